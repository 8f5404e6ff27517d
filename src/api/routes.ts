/**
 * Which route modules each listener resource serves. Listener `resources`
 * names come from the configuration (client, federation, keys, media,
 * replication, ...). Add new route modules to the resource they belong to.
 */
import type { Services } from '../app/services.js';
import { versionsRoutes } from './client/versions.js';
import { healthRoutes } from './health.js';
import { Router, type RouteDef } from './types.js';

export type RouteModule = (r: Router, s: Services) => void;

export const resourceModules: Record<string, RouteModule[]> = {
  client: [versionsRoutes],
  federation: [],
  keys: [],
  media: [],
  replication: [],
};

/** Every route a listener with these resources serves (health always). */
export function routesFor(resourceNames: string[], services: Services): RouteDef[] {
  const r = new Router();
  healthRoutes(r);
  const seen = new Set<RouteModule>();
  for (const name of resourceNames) {
    for (const mod of resourceModules[name] ?? []) {
      if (seen.has(mod)) continue;
      seen.add(mod);
      mod(r, services);
    }
  }
  // The same method+path may come from two resources: keep the first.
  const unique = new Map<string, RouteDef>();
  for (const def of r.routes) {
    const key = `${def.method} ${def.path}`;
    if (!unique.has(key)) unique.set(key, def);
  }
  return [...unique.values()];
}
