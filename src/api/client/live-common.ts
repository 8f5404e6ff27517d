/** Helpers shared by the live-streams route modules. */
import type { Services } from '../../app/services.js';
import type { LiveServices } from '../../app/wire-live.js';
import type { Router } from '../types.js';
import { isValidRoomId } from '../../matrix/identifiers.js';
import { Errors } from '../../util/errors.js';

export function live(s: Services): LiveServices {
  if (!s.live) throw Errors.unknown('live streams are not available', 500);
  return s.live;
}

export function requireSelf(requester: string, userId: string, what: string): void {
  if (requester !== userId) throw Errors.forbidden(`Cannot ${what} for other users`);
}

export function requireRoomId(roomId: string): void {
  if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room ID: ${roomId}`);
}

type Adder = Router['get'];

/** The router with `auth: 'required'` as the default for every route. */
export function authed(r: Router): { get: Adder; post: Adder; put: Adder; delete: Adder } {
  const wrap =
    (m: 'get' | 'post' | 'put' | 'delete'): Adder =>
    (paths, handler, options) =>
      r[m](paths, handler, { auth: 'required', ...(options ?? {}) });
  return { get: wrap('get'), post: wrap('post'), put: wrap('put'), delete: wrap('delete') };
}
