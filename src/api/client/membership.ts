/**
 * Client membership API: join (by id or alias), invite, leave, kick, ban,
 * unban, knock, forget — each with an optional `reason`.
 */
import type { Services } from '../../app/services.js';
import { clientPaths, type MatrixRequest, type Router } from '../types.js';
import { optionalBoolean, optionalString, requireString } from '../validate.js';
import { actorOf } from './rooms.js';

const AUTH = { auth: 'required' as const };
const GUEST = { auth: 'required' as const, allowGuest: true };

function reasonOf(req: MatrixRequest): string | undefined {
  return optionalString(req.jsonOrEmpty(), 'reason');
}

export function membershipRoutes(r: Router, s: Services): void {
  r.post(clientPaths('/join/:roomIdOrAlias'), async (req) => ({
    room_id: await s.rooms.join(actorOf(req), req.params.roomIdOrAlias!, reasonOf(req)),
  }), GUEST);

  r.post(clientPaths('/rooms/:roomId/join'), async (req) => ({
    room_id: await s.rooms.join(actorOf(req), req.params.roomId!, reasonOf(req)),
  }), GUEST);

  r.post(clientPaths('/knock/:roomIdOrAlias'), async (req) => ({
    room_id: await s.rooms.knock(actorOf(req), req.params.roomIdOrAlias!, reasonOf(req)),
  }), AUTH);

  r.post(clientPaths('/rooms/:roomId/invite'), async (req) => {
    const body = req.json();
    const userId = requireString(body, 'user_id');
    await s.rooms.invite(actorOf(req), req.params.roomId!, userId, optionalString(body, 'reason'), optionalBoolean(body, 'is_direct') ?? false);
    return {};
  }, AUTH);

  r.post(clientPaths('/rooms/:roomId/leave'), async (req) => {
    await s.rooms.leave(actorOf(req), req.params.roomId!, reasonOf(req));
    return {};
  }, GUEST);

  for (const action of ['kick', 'ban', 'unban'] as const) {
    r.post(clientPaths(`/rooms/:roomId/${action}`), async (req) => {
      const body = req.json();
      const userId = requireString(body, 'user_id');
      await s.rooms[action](actorOf(req), req.params.roomId!, userId, optionalString(body, 'reason'));
      return {};
    }, AUTH);
  }

  r.post(clientPaths('/rooms/:roomId/forget'), async (req) => {
    await s.rooms.forget(actorOf(req), req.params.roomId!);
    return {};
  }, AUTH);
}
