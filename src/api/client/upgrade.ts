/** POST /rooms/{roomId}/upgrade (client-server API "Room Upgrades"). */
import type { Services } from '../../app/services.js';
import { clientPaths, type Router } from '../types.js';
import { requireString } from '../validate.js';
import { actorOf } from './rooms.js';

export function upgradeRoutes(r: Router, s: Services): void {
  r.post(clientPaths('/rooms/:roomId/upgrade'), async (req) => {
    const version = requireString(req.json(), 'new_version');
    return { replacement_room: await s.roomUpgrades.upgrade(actorOf(req), req.params.roomId!, version) };
  }, { auth: 'required' });
}
