import type { Router } from './types.js';
import { respond } from './types.js';

/** `GET /health`, served on every HTTP listener. */
export function healthRoutes(r: Router): void {
  r.get('/health', () => respond(200, 'OK', { 'content-type': 'text/plain' }));
}
