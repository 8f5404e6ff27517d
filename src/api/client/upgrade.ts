/** POST /rooms/{roomId}/upgrade (client-server API "Room Upgrades"). */
import type { Services } from '../../app/services.js';
import { isValidUserId } from '../../matrix/identifiers.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { requireString } from '../validate.js';
import { actorOf } from './rooms.js';

export function upgradeRoutes(r: Router, s: Services): void {
  r.post(clientPaths('/rooms/:roomId/upgrade'), async (req) => {
    const body = req.json();
    const version = requireString(body, 'new_version');
    const extra = body.additional_creators;
    if (extra !== undefined && (!Array.isArray(extra) || extra.some((u) => typeof u !== 'string'))) {
      throw Errors.badJson("'additional_creators' must be a list of user ids");
    }
    for (const u of (extra as string[] | undefined) ?? []) if (!isValidUserId(u)) throw Errors.invalidParam(`Invalid user id in 'additional_creators': ${u}`);
    return { replacement_room: await s.roomUpgrades.upgrade(actorOf(req), req.params.roomId!, version, extra as string[] | undefined) };
  }, { auth: 'required' });
}
