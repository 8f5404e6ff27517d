/**
 * Which route modules each listener resource serves. Listener `resources`
 * names come from the configuration (client, federation, keys, media,
 * replication, ...). Add new route modules to the resource they belong to.
 */
import type { Services } from '../app/services.js';
import { versionsRoutes } from './client/versions.js';
import { healthRoutes } from './health.js';
import { Router, type RouteDef } from './types.js';
import { roomsRoutes } from './client/rooms.js';
import { membershipRoutes } from './client/membership.js';
import { directoryRoutes } from './client/directory.js';
import { replicationRoutes } from './replication/index.js';
import { accountRoutes } from './client/account.js';
import { deviceRoutes } from './client/devices.js';
import { filterRoutes } from './client/filters.js';
import { loginRoutes } from './client/login.js';
import { profileRoutes } from './client/profile.js';
import { registerRoutes } from './client/register.js';
import { adminRegisterRoutes } from './admin/register.js';
import { serverKeyRoutes } from './key/server-keys.js';
import { keysRoutes } from './client/keys.js';
import { crossSigningRoutes } from './client/cross-signing.js';
import { keyBackupRoutes } from './client/key-backup.js';
import { receiptsRoutes } from './client/receipts.js';
import { accountDataRoutes } from './client/account-data.js';
import { toDeviceRoutes } from './client/to-device.js';
import { presenceRoutes } from './client/presence.js';
import { pushRulesRoutes } from './client/push-rules.js';
import { notificationsRoutes } from './client/notifications.js';

import { syncRoutes } from './client/sync.js';
import { typingRoutes } from './client/typing.js';
import { legacyEventsRoutes } from './client/events-legacy.js';
import { roomsExtraRoutes } from './client/relations.js';

export type RouteModule = (r: Router, s: Services) => void;

export const resourceModules: Record<string, RouteModule[]> = {
  client: [versionsRoutes, roomsRoutes, membershipRoutes, directoryRoutes, registerRoutes, loginRoutes, accountRoutes, deviceRoutes, profileRoutes, filterRoutes, adminRegisterRoutes, keysRoutes, crossSigningRoutes, keyBackupRoutes, receiptsRoutes, accountDataRoutes, toDeviceRoutes, presenceRoutes, pushRulesRoutes, notificationsRoutes, syncRoutes, typingRoutes, legacyEventsRoutes, ...roomsExtraRoutes],
  federation: [serverKeyRoutes],
  keys: [serverKeyRoutes],
  media: [],
  replication: [replicationRoutes],
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
