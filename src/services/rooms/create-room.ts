/**
 * POST /createRoom (client-server API "Creation"). The events go out in the
 * spec's order:
 *   1. m.room.create (creation_content, room_version)
 *   2. the creator's join
 *   3. m.room.power_levels (defaults, preset, power_level_content_override)
 *   4. m.room.canonical_alias when room_alias_name is given
 *   5. the preset's join_rules, history_visibility, guest_access
 *   6. initial_state (overrides the preset)
 *   7. m.room.name, m.room.topic
 *   8. invites (is_direct carried on the member event)
 * All are queued at once so the creation path commits them in one batch.
 *
 * Room version 12: the room id is derived from the create event (computed
 * here first, with the timestamp the event is then built with); the creator
 * and `creation_content.additional_creators` (plus the invitees of
 * `trusted_private_chat`) are room creators with infinite power, so they are
 * not listed in the power levels' `users`, and m.room.tombstone needs 150.
 */
import { randomOpaqueId } from '../../matrix/event-ids.js';
import { isValidRoomAlias, isValidRoomId, isValidUserId } from '../../matrix/identifiers.js';
import { roomIdForCreateEvent } from '../../matrix/room-ids.js';
import { isStrictCanonical } from '../../matrix/canonical-json.js';
import { DEFAULT_ROOM_VERSION, getRoomVersion, type RoomVersion } from '../../matrix/room-versions.js';
import { stateKey } from '../../matrix/types.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { Actor, RoomsContext } from './context.js';
import type { EventSpec } from './event-creator.js';

export type Preset = 'private_chat' | 'trusted_private_chat' | 'public_chat';

export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  room_version?: string;
  creation_content?: Record<string, any>;
  initial_state?: Array<{ type: string; state_key?: string; content: Record<string, any> }>;
  preset?: Preset;
  is_direct?: boolean;
  power_level_content_override?: Record<string, any>;
}

const PRESETS: Record<Preset, { join_rule: string; history_visibility: string; guest_access?: string }> = {
  private_chat: { join_rule: 'invite', history_visibility: 'shared', guest_access: 'can_join' },
  trusted_private_chat: { join_rule: 'invite', history_visibility: 'shared', guest_access: 'can_join' },
  public_chat: { join_rule: 'public', history_visibility: 'shared' },
};

/** Checks the shape of a createRoom body; throws M_BAD_JSON / M_INVALID_PARAM. */
export function validateCreateRoom(body: Record<string, any>): CreateRoomRequest {
  const str = (k: string) => {
    if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string') throw Errors.badJson(`'${k}' must be a string`);
  };
  const obj = (k: string) => {
    if (body[k] !== undefined && body[k] !== null && (typeof body[k] !== 'object' || Array.isArray(body[k]))) throw Errors.badJson(`'${k}' must be an object`);
  };
  ['visibility', 'room_alias_name', 'name', 'topic', 'room_version', 'preset'].forEach(str);
  ['creation_content', 'power_level_content_override'].forEach(obj);
  if (body.visibility !== undefined && body.visibility !== 'public' && body.visibility !== 'private') {
    throw Errors.invalidParam("'visibility' must be 'public' or 'private'");
  }
  if (body.preset !== undefined && !(body.preset in PRESETS)) throw Errors.invalidParam(`Unknown preset: ${body.preset}`);
  if (body.invite !== undefined) {
    if (!Array.isArray(body.invite) || body.invite.some((u: unknown) => typeof u !== 'string')) throw Errors.badJson("'invite' must be a list of user ids");
    for (const u of body.invite) if (!isValidUserId(u)) throw Errors.invalidParam(`Invalid user id in 'invite': ${u}`);
  }
  if (body.is_direct !== undefined && typeof body.is_direct !== 'boolean') throw Errors.badJson("'is_direct' must be a boolean");
  if (body.initial_state !== undefined) {
    if (!Array.isArray(body.initial_state)) throw Errors.badJson("'initial_state' must be a list");
    for (const ev of body.initial_state) {
      if (!ev || typeof ev !== 'object' || typeof ev.type !== 'string' || !ev.type) throw Errors.badJson('initial_state events need a type');
      if (ev.state_key !== undefined && typeof ev.state_key !== 'string') throw Errors.badJson('initial_state state_key must be a string');
      if (!ev.content || typeof ev.content !== 'object' || Array.isArray(ev.content)) throw Errors.badJson('initial_state events need a content object');
      if (ev.type === 'm.room.create' || ev.type === 'm.room.member') throw Errors.invalidParam(`initial_state may not contain ${ev.type}`);
    }
  }
  if (body.room_version !== undefined && !getRoomVersion(body.room_version)) throw Errors.unsupportedRoomVersion(body.room_version);
  return body as CreateRoomRequest;
}

let lastCreateTs = 0;

/**
 * The origin_server_ts of a new v12+ create event: strictly increasing in this
 * process, so that two rooms created by one user with the same content in the
 * same millisecond still get different room ids.
 */
export function nextCreateTimestamp(): number {
  lastCreateTs = Math.max(Date.now(), lastCreateTs + 1);
  return lastCreateTs;
}

/**
 * The room id of a v12+ room whose create event the event creator will build
 * from these values (spec `originServerTs: ts`, no prev/auth events).
 */
export function hashRoomId(sender: string, content: Record<string, any>, ts: number, rv: RoomVersion): string {
  if (!isStrictCanonical(content)) {
    throw Errors.badJson('Event content must be canonical JSON: integers in [-(2**53)+1, (2**53)-1], no floats');
  }
  return roomIdForCreateEvent(
    { type: 'm.room.create', state_key: '', sender, content, origin_server_ts: ts, depth: 1, prev_events: [], auth_events: [] },
    rv,
  );
}

/** The id of a new room, chosen before its events are persisted (`createTs`: the v12+ create event's timestamp). */
export interface NewRoomIdentity {
  roomId: string;
  createTs?: number;
}

/**
 * Chooses the id of the room `req` creates, before any event exists (the
 * caller routes the creation to the room's event persister with it): a
 * random id, or in v12+ the hash of the create event built from `req`.
 */
export function chooseRoomId(serverName: string, actor: Actor, req: CreateRoomRequest): NewRoomIdentity {
  const { rv, createContent } = createEventContent(actor, req);
  if (!rv.roomIdFromCreateEvent) return { roomId: `!${randomOpaqueId(18)}:${serverName}` };
  const createTs = nextCreateTimestamp();
  return { roomId: hashRoomId(actor.userId, createContent, createTs, rv), createTs };
}

function createEventContent(actor: Actor, req: CreateRoomRequest) {
  const rv = getRoomVersion(req.room_version ?? DEFAULT_ROOM_VERSION)!;
  const creator = actor.userId;
  const preset: Preset = req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat');
  const createContent: Record<string, any> = { ...(req.creation_content ?? {}), room_version: rv.id };
  if (rv.implicitRoomCreator) delete createContent.creator;
  else createContent.creator = creator;
  const creators = new Set<string>([creator]);
  if (rv.privilegedCreators) {
    const extra = createContent.additional_creators;
    if (extra !== undefined && (!Array.isArray(extra) || extra.some((u: unknown) => typeof u !== 'string'))) {
      throw Errors.badJson("'creation_content.additional_creators' must be a list of user ids");
    }
    const merged: string[] = [...((extra as string[] | undefined) ?? [])];
    if (preset === 'trusted_private_chat') merged.push(...(req.invite ?? []));
    for (const u of merged) {
      if (!isValidUserId(u)) throw Errors.invalidParam(`Invalid user id in 'additional_creators': ${u}`);
    }
    const unique = [...new Set(merged)].filter((u) => u !== creator);
    if (extra !== undefined || unique.length) createContent.additional_creators = unique;
    for (const u of unique) creators.add(u);
  }
  return { rv, creator, preset, createContent, creators };
}

/**
 * Thrown by the room's events writer when a room id chosen elsewhere is
 * already taken: two processes can hash the same v12 create event (same
 * creator, content and millisecond). The caller draws a new id and retries.
 */
export class RoomIdTakenError extends MatrixError {
  static readonly MARKER = 'myelin_room_id_taken';
  constructor(roomId: string) {
    super(409, 'M_UNKNOWN', `Room id ${roomId} is already taken`, { [RoomIdTakenError.MARKER]: true });
  }
  static is(e: unknown): boolean {
    return e instanceof MatrixError && e.extra[RoomIdTakenError.MARKER] === true;
  }
}

/** Room ids being created in this process (a chosen id is claimed before its events exist). */
const creating = new Set<string>();

/** `chosen`: the room's id chosen by the caller (chooseRoomId), else chosen here. */
export async function createRoom(
  ctx: RoomsContext,
  actor: Actor,
  req: CreateRoomRequest,
  chosen?: NewRoomIdentity,
): Promise<{ roomId: string; alias?: string }> {
  if (!chosen) return createRoomAs(ctx, actor, req);
  // Every event of a room is persisted by one process, so this claim is enough.
  if (creating.has(chosen.roomId)) throw new RoomIdTakenError(chosen.roomId);
  creating.add(chosen.roomId);
  try {
    if (await ctx.store.getRoom(chosen.roomId)) throw new RoomIdTakenError(chosen.roomId);
    return await createRoomAs(ctx, actor, req, chosen);
  } finally {
    creating.delete(chosen.roomId);
  }
}

async function createRoomAs(
  ctx: RoomsContext,
  actor: Actor,
  req: CreateRoomRequest,
  chosen?: NewRoomIdentity,
): Promise<{ roomId: string; alias?: string }> {
  // 1 (content). The create event's content; in v12 it also fixes the room id.
  const { rv, creator, preset, createContent, creators } = createEventContent(actor, req);
  let roomId: string;
  let createTs: number | undefined;
  if (chosen) {
    roomId = chosen.roomId;
    createTs = chosen.createTs;
    const matches = rv.roomIdFromCreateEvent
      ? createTs !== undefined && hashRoomId(creator, createContent, createTs, rv) === roomId
      : createTs === undefined && isValidRoomId(roomId) && roomId.endsWith(`:${ctx.serverName}`);
    if (!matches) throw new Error(`createRoom: room id ${roomId} does not match the request`);
  } else if (rv.roomIdFromCreateEvent) {
    createTs = nextCreateTimestamp();
    roomId = hashRoomId(creator, createContent, createTs, rv);
  } else {
    roomId = `!${randomOpaqueId(18)}:${ctx.serverName}`;
  }

  let alias: string | undefined;
  if (req.room_alias_name !== undefined) {
    alias = `#${req.room_alias_name}:${ctx.serverName}`;
    if (!req.room_alias_name || req.room_alias_name.includes(':') || !isValidRoomAlias(alias)) {
      throw Errors.invalidParam(`Invalid room_alias_name: ${req.room_alias_name}`);
    }
    if (!(await ctx.store.createAlias(alias, roomId, creator))) throw new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');
  }

  const specs: EventSpec[] = [];
  const state = (type: string, content: Record<string, any>, sk = ''): void => {
    specs.push({ roomId, type, stateKey: sk, sender: creator, content });
  };

  // 1. create
  specs.push({
    roomId,
    type: 'm.room.create',
    stateKey: '',
    sender: creator,
    content: createContent,
    roomVersion: rv.id,
    ...(createTs !== undefined ? { originServerTs: createTs } : {}),
  });

  // 2. creator joins
  const profile = await ctx.profiles?.getProfile(creator);
  const join: Record<string, any> = { membership: 'join' };
  if (profile?.displayname !== undefined) join.displayname = profile.displayname;
  if (profile?.avatar_url !== undefined) join.avatar_url = profile.avatar_url;
  state('m.room.member', join, creator);

  // 3. power levels
  // v12: creators have infinite power and may not be listed.
  const users: Record<string, number> = rv.privilegedCreators ? {} : { [creator]: 100 };
  if (preset === 'trusted_private_chat' && !rv.privilegedCreators) for (const u of req.invite ?? []) users[u] = 100;
  const pl: Record<string, any> = {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      // v12: explicitly above state_default and the admins' 100.
      'm.room.tombstone': rv.privilegedCreators ? 150 : 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === 'public_chat' ? 50 : 0,
  };
  const initialPl = req.initial_state?.find((e) => e.type === 'm.room.power_levels' && (e.state_key ?? '') === '');
  Object.assign(pl, initialPl?.content ?? {}, req.power_level_content_override ?? {});
  if (rv.privilegedCreators && pl.users && typeof pl.users === 'object') {
    for (const u of creators) {
      if (Object.prototype.hasOwnProperty.call(pl.users, u)) {
        if (alias) await ctx.store.deleteAlias(alias);
        throw Errors.invalidParam(`Room creator ${u} cannot be given a power level in room version ${rv.id}`);
      }
    }
  }
  state('m.room.power_levels', pl);

  // 4. canonical alias
  if (alias) state('m.room.canonical_alias', { alias });

  // 5 + 6. preset state, then initial_state (which wins over the preset)
  const p = PRESETS[preset];
  const presetState = new Map<string, { type: string; content: Record<string, any> }>();
  presetState.set(stateKey('m.room.join_rules', ''), { type: 'm.room.join_rules', content: { join_rule: p.join_rule } });
  presetState.set(stateKey('m.room.history_visibility', ''), { type: 'm.room.history_visibility', content: { history_visibility: p.history_visibility } });
  if (p.guest_access) presetState.set(stateKey('m.room.guest_access', ''), { type: 'm.room.guest_access', content: { guest_access: p.guest_access } });
  const initial = (req.initial_state ?? []).filter((e) => !(e.type === 'm.room.power_levels' && (e.state_key ?? '') === ''));
  for (const e of initial) presetState.delete(stateKey(e.type, e.state_key ?? ''));
  for (const [, e] of presetState) state(e.type, e.content);
  for (const e of initial) {
    // name/topic keys of the request override initial_state
    if ((e.type === 'm.room.name' && req.name !== undefined) || (e.type === 'm.room.topic' && req.topic !== undefined)) continue;
    state(e.type, e.content, e.state_key ?? '');
  }

  // 7. name, topic
  if (req.name !== undefined) state('m.room.name', { name: req.name });
  if (req.topic !== undefined) state('m.room.topic', { topic: req.topic });

  // 8. invites
  for (const u of req.invite ?? []) {
    const p2 = await ctx.profiles?.getProfile(u);
    const content: Record<string, any> = { membership: 'invite' };
    if (req.is_direct) content.is_direct = true;
    if (p2?.displayname !== undefined) content.displayname = p2.displayname;
    if (p2?.avatar_url !== undefined) content.avatar_url = p2.avatar_url;
    state('m.room.member', content, u);
  }

  // Queue every event at once: they are built in order and committed together.
  const results = await Promise.allSettled(specs.map((s) => ctx.creator.create(s)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    if (results[0]!.status === 'rejected' && alias) await ctx.store.deleteAlias(alias);
    const e = failed.reason;
    if (e instanceof MatrixError) throw new MatrixError(e.status === 403 ? 400 : e.status, e.status === 403 ? 'M_INVALID_PARAM' : e.errcode, `Invalid initial state: ${e.message}`);
    throw e;
  }
  if (req.visibility === 'public') await ctx.store.setRoomPublic(roomId, true);
  return { roomId, ...(alias ? { alias } : {}) };
}
