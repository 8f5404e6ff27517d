/**
 * Client room API: createRoom, sending (messages, state, redactions) and
 * reading (event, messages, context, state, members, joined rooms,
 * timestamp_to_event). Thin: validate, call the rooms services.
 */
import type { Services } from '../../app/services.js';
import { validateCreateRoom } from '../../services/rooms/create-room.js';
import { parseFilterParam } from '../../services/rooms/pagination.js';
import type { Membership } from '../../matrix/types.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, clientV1Paths, type MatrixRequest, type Router } from '../types.js';
import { optionalString, queryInt } from '../validate.js';

const AUTH = { auth: 'required' as const };
/** Endpoints guests may use (client-server API "Guest access"). */
const GUEST = { auth: 'required' as const, allowGuest: true };
const MEMBERSHIPS = ['join', 'invite', 'knock', 'leave', 'ban'];

export function actorOf(req: MatrixRequest): { userId: string; deviceId: string | null; isGuest: boolean } {
  return { userId: req.requester.userId, deviceId: req.requester.deviceId, isGuest: req.requester.isGuest };
}

function dirParam(v: string | undefined, def: 'b' | 'f'): 'b' | 'f' {
  if (v === undefined || v === '') return def;
  if (v !== 'b' && v !== 'f') throw Errors.invalidParam("'dir' must be 'b' or 'f'");
  return v;
}

function membershipParam(v: string | undefined, name: string): Membership | undefined {
  if (v === undefined || v === '') return undefined;
  if (!MEMBERSHIPS.includes(v)) throw Errors.invalidParam(`'${name}' must be one of ${MEMBERSHIPS.join(', ')}`);
  return v as Membership;
}

export function roomsRoutes(r: Router, s: Services): void {
  // ---- create
  r.post(clientPaths('/createRoom'), async (req) => {
    const body = validateCreateRoom(req.jsonOrEmpty());
    body.room_version ??= s.config.default_room_version;
    const { roomId, alias } = await s.rooms.createRoom(actorOf(req), body);
    return { room_id: roomId, ...(alias ? { room_alias: alias } : {}) };
  }, AUTH);

  // ---- send
  /** rc_message: a sender over the limit gets M_LIMIT_EXCEEDED, unless an admin. */
  const limitMessages = async (req: MatrixRequest) => {
    const userId = req.requester.userId;
    const r = s.accountRatelimits.message.check(userId);
    if (!r.allowed && !(await s.accounts.isAdmin(userId))) throw Errors.limitExceeded(r.retryAfterMs);
  };

  r.put(clientPaths('/rooms/:roomId/send/:eventType/:txnId'), async (req) => {
    const content = req.json();
    await limitMessages(req);
    const eventId = await s.rooms.sendMessage(actorOf(req), req.params.roomId!, req.params.eventType!, content, req.params.txnId!);
    return { event_id: eventId };
  }, GUEST);

  const putState = async (req: MatrixRequest) => {
    const content = req.json();
    const eventId = await s.rooms.sendState(actorOf(req), req.params.roomId!, req.params.eventType!, req.params.stateKey ?? '', content);
    return { event_id: eventId };
  };
  r.put(clientPaths('/rooms/:roomId/state/:eventType'), putState, AUTH);
  r.put(clientPaths('/rooms/:roomId/state/:eventType/:stateKey'), putState, AUTH);

  const getState = async (req: MatrixRequest) => {
    const ev = await s.roomReads.stateEvent(actorOf(req), req.params.roomId!, req.params.eventType!, req.params.stateKey ?? '');
    return req.query.format === 'event' ? ev : ev.content;
  };
  r.get(clientPaths('/rooms/:roomId/state/:eventType'), getState, GUEST);
  r.get(clientPaths('/rooms/:roomId/state/:eventType/:stateKey'), getState, GUEST);

  r.put(clientPaths('/rooms/:roomId/redact/:eventId/:txnId'), async (req) => {
    const body = req.jsonOrEmpty();
    const reason = optionalString(body, 'reason');
    await limitMessages(req);
    const eventId = await s.rooms.redact(actorOf(req), req.params.roomId!, req.params.eventId!, req.params.txnId!, reason);
    return { event_id: eventId };
  }, AUTH);

  // ---- read
  r.get(clientPaths('/rooms/:roomId/event/:eventId'), (req) =>
    s.roomReads.getEvent(actorOf(req), req.params.roomId!, req.params.eventId!), GUEST);

  r.get(clientPaths('/rooms/:roomId/messages'), (req) =>
    s.roomReads.messages(actorOf(req), req.params.roomId!, {
      ...(req.query.from ? { from: req.query.from } : {}),
      ...(req.query.to ? { to: req.query.to } : {}),
      dir: dirParam(req.query.dir, 'f'),
      limit: queryInt(req.query.limit, 'limit', 10, 0),
      filter: parseFilterParam(req.query.filter),
    }), GUEST);

  r.get(clientPaths('/rooms/:roomId/context/:eventId'), (req) =>
    s.roomReads.context(actorOf(req), req.params.roomId!, req.params.eventId!, queryInt(req.query.limit, 'limit', 10, 0), parseFilterParam(req.query.filter)), GUEST);

  r.get(clientPaths('/rooms/:roomId/state'), (req) => s.roomReads.state(actorOf(req), req.params.roomId!), GUEST);

  r.get(clientPaths('/rooms/:roomId/members'), async (req) => {
    const membership = membershipParam(req.query.membership, 'membership');
    const notMembership = membershipParam(req.query.not_membership, 'not_membership');
    const chunk = await s.roomReads.members(actorOf(req), req.params.roomId!, {
      ...(req.query.at ? { at: req.query.at } : {}),
      ...(membership ? { membership } : {}),
      ...(notMembership ? { notMembership } : {}),
    });
    return { chunk };
  }, GUEST);

  r.get(clientPaths('/rooms/:roomId/joined_members'), async (req) => ({
    joined: await s.roomReads.joinedMembers(actorOf(req), req.params.roomId!),
  }), GUEST);

  r.get(clientPaths('/joined_rooms'), async (req) => ({ joined_rooms: await s.roomReads.joinedRooms(req.requester.userId) }), GUEST);

  r.get(clientV1Paths('/rooms/:roomId/timestamp_to_event'), (req) => {
    if (req.query.ts === undefined) throw Errors.missingParam('ts');
    if (req.query.dir === undefined) throw Errors.missingParam('dir');
    return s.roomReads.timestampToEvent(actorOf(req), req.params.roomId!, queryInt(req.query.ts, 'ts', 0, 0), dirParam(req.query.dir, 'f'));
  }, AUTH);
}
