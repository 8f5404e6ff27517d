/**
 * Writing to rooms from the client API: sending messages and state,
 * redacting, and the membership actions (join, invite, leave, kick, ban,
 * unban, knock, forget). Every event goes through the EventCreator; the
 * checks here exist to give clients clear M_FORBIDDEN messages before the
 * auth rules (which remain the final word) run.
 */
import { canBan, canKick, canRedact, canInvite, userPowerLevel, namedLevel } from '../../matrix/power-levels.js';
import { isValidRoomAlias, isValidRoomId, isValidUserId } from '../../matrix/identifiers.js';
import { stateKey, type Membership } from '../../matrix/types.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { CachedRoom, CreatedEvent, EventSpec } from './event-creator.js';
import type { Actor, RoomsContext } from './context.js';
import { createRoom, type CreateRoomRequest, type NewRoomIdentity } from './create-room.js';
import { validateEventType, validateTxnId } from '../path-ids.js';

const MAX_ID_FIELD = 255;
/**
 * The longest idempotency key accepted: user id, device id, scope and txn id
 * together (UTF-8 bytes). They are one PostgreSQL primary-key entry, which
 * holds at most 2,704 bytes with its headers; only odd combinations of long
 * parts (a device id of 255 three-byte characters, a 1 kB txn id, a room id
 * full of `/`) come near it.
 */
const MAX_TXN_KEY_BYTES = 2600;

/**
 * The scope of a client transaction id. The spec makes a request a
 * retransmission when it has the same transaction id and the same HTTP path,
 * for one device: the scope is that path without the txn id,
 * `send/{roomId}/{eventType}` or `redact/{roomId}/{eventId}`. The room id has
 * `%` and `/` percent-encoded, so that it ends at the first `/` after it and
 * two different paths never share a scope; the last part is taken as it is.
 * Migration rooms/006 builds the same text in SQL for the rows written before.
 */
export function txnScope(endpoint: 'send' | 'redact', roomId: string, last: string): string {
  return `${endpoint}/${roomId.replace(/%/g, '%25').replace(/\//g, '%2F')}/${last}`;
}

export function membershipIn(room: CachedRoom, userId: string): Membership | undefined {
  const ev = room.state.get(stateKey('m.room.member', userId));
  const m = (ev?.content as any)?.membership;
  return typeof m === 'string' ? (m as Membership) : undefined;
}

function joinRule(room: CachedRoom): string {
  const r = (room.state.get(stateKey('m.room.join_rules', ''))?.content as any)?.join_rule;
  return typeof r === 'string' ? r : 'invite';
}

export class RoomService {
  /** In-flight sends by (user, device, scope, txn): duplicates wait for the first. */
  private readonly inFlightTxns = new Map<string, Promise<string>>();

  constructor(protected readonly ctx: RoomsContext) {}

  /** POST /createRoom (body already shape-checked by validateCreateRoom); `chosen`: the room id the caller chose. */
  createRoom(actor: Actor, req: CreateRoomRequest, chosen?: NewRoomIdentity): Promise<{ roomId: string; alias?: string }> {
    return createRoom(this.ctx, actor, req, chosen);
  }

  /** The cached room or 404 M_NOT_FOUND. */
  async requireRoom(roomId: string): Promise<CachedRoom> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const room = await this.ctx.creator.getRoomState(roomId);
    if (!room) throw Errors.notFound('Unknown room');
    return room;
  }

  /** Resolves `#alias` or `!room` to a room id. */
  async resolveRoomIdOrAlias(idOrAlias: string): Promise<string> {
    if (idOrAlias.startsWith('#')) {
      if (!isValidRoomAlias(idOrAlias)) throw Errors.invalidParam(`Invalid room alias: ${idOrAlias}`);
      const a = await this.ctx.store.getAlias(idOrAlias);
      if (!a) throw Errors.notFound(`Room alias ${idOrAlias} not found`);
      return a.roomId;
    }
    if (!isValidRoomId(idOrAlias)) throw Errors.invalidParam(`Invalid room id or alias: ${idOrAlias}`);
    return idOrAlias;
  }

  // ------------------------------------------------------------- sending

  /** PUT /rooms/{roomId}/send/{type}/{txnId}: idempotent per (user, device, path). */
  async sendMessage(actor: Actor, roomId: string, type: string, content: Record<string, any>, txnId: string): Promise<string> {
    validateEventType(type);
    validateRoomId(roomId);
    const scope = txnScope('send', roomId, type);
    return this.withTxn(actor, scope, txnId, async () => {
      await this.requireJoined(actor.userId, roomId);
      const spec: EventSpec = { roomId, type, sender: actor.userId, content };
      if (actor.deviceId) spec.txn = { deviceId: actor.deviceId, scope, txnId };
      return (await this.ctx.creator.create(spec)).eventId;
    });
  }

  /** PUT /state/{type}/{stateKey}. */
  async sendState(actor: Actor, roomId: string, type: string, sk: string, content: Record<string, any>): Promise<string> {
    validateEventType(type);
    if (Buffer.byteLength(sk) > MAX_ID_FIELD) throw Errors.invalidParam('state_key is too long');
    const room = await this.requireRoom(roomId);
    if (type === 'm.room.member') {
      // Membership through the state API follows the same rules.
      return (await this.ctx.creator.create({ roomId, type, stateKey: sk, sender: actor.userId, content })).eventId;
    }
    if (membershipIn(room, actor.userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
    if (type === 'm.room.canonical_alias') await this.checkCanonicalAlias(roomId, content);
    // Sending the same state again is a no-op that returns the existing event.
    const existing = room.state.get(stateKey(type, sk));
    if (existing && existing.sender === actor.userId && sameJson(existing.content, content)) return existing.event_id;
    return (await this.ctx.creator.create({ roomId, type, stateKey: sk, sender: actor.userId, content })).eventId;
  }

  /** PUT /rooms/{roomId}/redact/{eventId}/{txnId}: idempotent per (user, device, path). */
  async redact(actor: Actor, roomId: string, eventId: string, txnId: string, reason?: string): Promise<string> {
    validateRoomId(roomId);
    // No event id is longer (and the scope below stays bounded).
    if (!eventId || Buffer.byteLength(eventId) > MAX_ID_FIELD) throw Errors.invalidParam('Invalid event id');
    const scope = txnScope('redact', roomId, eventId);
    return this.withTxn(actor, scope, txnId, async () => {
      const room = await this.requireJoined(actor.userId, roomId);
      const target = await this.ctx.store.getEvent(eventId);
      if (!target || target.roomId !== roomId) throw Errors.notFound('Event not found');
      if (!canRedact(room.state, actor.userId, target.event.sender, room.rv)) {
        throw Errors.forbidden("You don't have permission to redact this event");
      }
      const spec: EventSpec = {
        roomId,
        type: 'm.room.redaction',
        sender: actor.userId,
        content: reason !== undefined ? { reason } : {},
        redacts: eventId,
      };
      if (actor.deviceId) spec.txn = { deviceId: actor.deviceId, scope, txnId };
      return (await this.ctx.creator.create(spec)).eventId;
    });
  }

  /** Runs `send` once per (user, device, scope, txnId); a repeat gets the first answer's event id. */
  private async withTxn(actor: Actor, scope: string, txnId: string, send: () => Promise<string>): Promise<string> {
    // Stored as part of a key with the user and device ids and the scope
    // (PostgreSQL's index entries hold at most about 2.7 kB): a longer one is a bad request.
    validateTxnId(txnId);
    if (!actor.deviceId) return send();
    const keyBytes = Buffer.byteLength(actor.userId) + Buffer.byteLength(actor.deviceId) + Buffer.byteLength(scope) + Buffer.byteLength(txnId);
    if (keyBytes > MAX_TXN_KEY_BYTES) {
      throw Errors.invalidParam(`Transaction id too long for this device and path (their ids and the txn id exceed ${MAX_TXN_KEY_BYTES} bytes together)`);
    }
    // Any part may hold any character: JSON keeps the parts apart.
    const key = JSON.stringify([actor.userId, actor.deviceId, scope, txnId]);
    const pending = this.inFlightTxns.get(key);
    if (pending) return pending;
    const p = (async () => {
      const existing = await this.ctx.store.getTxnEvent(actor.userId, actor.deviceId!, scope, txnId);
      return existing ?? send();
    })();
    this.inFlightTxns.set(key, p);
    try {
      return await p;
    } finally {
      this.inFlightTxns.delete(key);
    }
  }

  private async requireJoined(userId: string, roomId: string): Promise<CachedRoom> {
    const room = await this.requireRoom(roomId);
    if (membershipIn(room, userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
    return room;
  }

  private async checkCanonicalAlias(roomId: string, content: Record<string, any>): Promise<void> {
    const aliases: unknown[] = [];
    if (content.alias !== undefined && content.alias !== null) aliases.push(content.alias);
    if (content.alt_aliases !== undefined) {
      if (!Array.isArray(content.alt_aliases)) throw new MatrixError(400, 'M_INVALID_PARAM', 'alt_aliases must be a list');
      aliases.push(...content.alt_aliases);
    }
    for (const a of aliases) {
      if (typeof a !== 'string' || !isValidRoomAlias(a)) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid alias: ${String(a)}`);
      if (a.endsWith(':' + this.ctx.serverName)) {
        const row = await this.ctx.store.getAlias(a);
        if (!row || row.roomId !== roomId) throw new MatrixError(400, 'M_BAD_ALIAS', `Alias ${a} does not point to this room`);
      }
    }
  }

  // ----------------------------------------------------------- membership

  private async memberContent(userId: string, membership: Membership, reason?: string, extra: Record<string, any> = {}): Promise<Record<string, any>> {
    const content: Record<string, any> = { membership, ...extra };
    if (membership === 'join' || membership === 'invite' || membership === 'knock') {
      const p = await this.ctx.profiles?.getProfile(userId);
      if (p?.displayname !== undefined) content.displayname = p.displayname;
      if (p?.avatar_url !== undefined) content.avatar_url = p.avatar_url;
    }
    if (reason !== undefined) content.reason = reason;
    return content;
  }

  private member(roomId: string, sender: string, target: string, content: Record<string, any>, check?: (room: CachedRoom) => void): Promise<CreatedEvent> {
    return this.ctx.creator.create({ roomId, type: 'm.room.member', stateKey: target, sender, content, ...(check ? { precheck: check } : {}) });
  }

  async join(actor: Actor, roomIdOrAlias: string, reason?: string): Promise<string> {
    const roomId = await this.resolveRoomIdOrAlias(roomIdOrAlias);
    const room = await this.ctx.creator.getRoomState(roomId);
    if (!room) throw Errors.notFound('No known servers for this room (the room is not on this server)');
    const content = await this.memberContent(actor.userId, 'join', reason);
    await this.member(roomId, actor.userId, actor.userId, content, (r) => {
      const current = membershipIn(r, actor.userId);
      if (current === 'ban') throw Errors.forbidden('You are banned from this room');
      if (actor.isGuest && (r.state.get(stateKey('m.room.guest_access', ''))?.content as any)?.guest_access !== 'can_join') {
        throw Errors.guestAccessForbidden();
      }
      if (current === 'join' || current === 'invite') return;
      const rule = joinRule(r);
      if (rule === 'public') return;
      if (rule === 'knock' || rule === 'invite' || rule === 'private') throw Errors.forbidden('You are not invited to this room');
      if (rule === 'restricted' || rule === 'knock_restricted') {
        throw Errors.forbidden('This room is restricted; joining through room membership elsewhere is not supported here yet');
      }
    });
    return roomId;
  }

  async invite(actor: Actor, roomId: string, target: string, reason?: string, isDirect = false): Promise<void> {
    if (!isValidUserId(target)) throw Errors.invalidParam(`Invalid user id: ${target}`);
    await this.requireRoom(roomId);
    const extra: Record<string, any> = isDirect ? { is_direct: true } : {};
    const content = await this.memberContent(target, 'invite', reason, extra);
    await this.member(roomId, actor.userId, target, content, (r) => {
      if (membershipIn(r, actor.userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
      const current = membershipIn(r, target);
      if (current === 'ban') throw Errors.forbidden(`${target} is banned from the room`);
      if (current === 'join') throw Errors.forbidden(`${target} is already in the room`);
      if (!canInvite(r.state, actor.userId, r.rv)) throw Errors.forbidden("You don't have permission to invite users to this room");
    });
  }

  async leave(actor: Actor, roomId: string, reason?: string): Promise<void> {
    const room = await this.requireRoom(roomId);
    const current = membershipIn(room, actor.userId);
    if (current === undefined) throw Errors.forbidden(`You are not a member of room ${roomId}`);
    if (current === 'leave' || current === 'ban') return; // already out
    await this.member(roomId, actor.userId, actor.userId, await this.memberContent(actor.userId, 'leave', reason));
  }

  async kick(actor: Actor, roomId: string, target: string, reason?: string): Promise<void> {
    if (!isValidUserId(target)) throw Errors.invalidParam(`Invalid user id: ${target}`);
    await this.requireRoom(roomId);
    await this.member(roomId, actor.userId, target, await this.memberContent(target, 'leave', reason), (r) => {
      if (membershipIn(r, actor.userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
      const current = membershipIn(r, target);
      if (current !== 'join' && current !== 'invite' && current !== 'knock') throw Errors.forbidden(`${target} is not in the room`);
      if (!canKick(r.state, actor.userId, target, r.rv)) {
        throw Errors.forbidden(
          `You don't have permission to kick ${target} (kick needs power level ${namedLevel(r.state, 'kick')} and more than the target's ${userPowerLevel(r.state, target, r.rv)})`,
        );
      }
    });
  }

  async ban(actor: Actor, roomId: string, target: string, reason?: string): Promise<void> {
    if (!isValidUserId(target)) throw Errors.invalidParam(`Invalid user id: ${target}`);
    await this.requireRoom(roomId);
    await this.member(roomId, actor.userId, target, await this.memberContent(target, 'ban', reason), (r) => {
      if (membershipIn(r, actor.userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
      if (!canBan(r.state, actor.userId, target, r.rv)) {
        throw Errors.forbidden(
          `You don't have permission to ban ${target} (ban needs power level ${namedLevel(r.state, 'ban')} and more than the target's ${userPowerLevel(r.state, target, r.rv)})`,
        );
      }
    });
  }

  async unban(actor: Actor, roomId: string, target: string, reason?: string): Promise<void> {
    if (!isValidUserId(target)) throw Errors.invalidParam(`Invalid user id: ${target}`);
    await this.requireRoom(roomId);
    await this.member(roomId, actor.userId, target, await this.memberContent(target, 'leave', reason), (r) => {
      if (membershipIn(r, actor.userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
      if (membershipIn(r, target) !== 'ban') throw Errors.forbidden(`${target} is not banned`);
      if (userPowerLevel(r.state, actor.userId, r.rv) < namedLevel(r.state, 'ban')) {
        throw Errors.forbidden("You don't have permission to unban users");
      }
    });
  }

  async knock(actor: Actor, roomIdOrAlias: string, reason?: string): Promise<string> {
    const roomId = await this.resolveRoomIdOrAlias(roomIdOrAlias);
    const room = await this.ctx.creator.getRoomState(roomId);
    if (!room) throw Errors.notFound('No known servers for this room (the room is not on this server)');
    await this.member(roomId, actor.userId, actor.userId, await this.memberContent(actor.userId, 'knock', reason), (r) => {
      if (!r.rv.knock) throw Errors.forbidden(`Room version ${r.rv.id} does not support knocking`);
      const current = membershipIn(r, actor.userId);
      if (current === 'ban') throw Errors.forbidden('You are banned from this room');
      if (current === 'join') throw Errors.forbidden('You are already in this room');
      if (current === 'invite') throw Errors.forbidden('You are already invited to this room');
      const rule = joinRule(r);
      if (rule !== 'knock' && rule !== 'knock_restricted') throw Errors.forbidden('This room does not accept knocks');
    });
    return roomId;
  }

  async forget(actor: Actor, roomId: string): Promise<void> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const m = await this.ctx.store.getMembership(roomId, actor.userId);
    if (!m) throw Errors.notFound('You have never been in this room');
    if (m.membership === 'join' || m.membership === 'invite' || m.membership === 'knock') {
      throw Errors.unknown('You must leave the room before forgetting it', 400);
    }
    await this.ctx.store.forgetRoom(actor.userId, roomId);
  }

  /** Profile changed: re-send the user's member event in every joined room. */
  /** Re-sends the user's member event in each joined room (`roomIds`: only these of them). */
  async onProfileChanged(userId: string, profile: { displayname?: string; avatar_url?: string }, roomIds?: string[]): Promise<void> {
    const joined = await this.ctx.store.getRoomsForUser(userId, ['join']);
    const only = roomIds ? new Set(roomIds) : undefined;
    const rooms = only ? joined.filter((r) => only.has(r.roomId)) : joined;
    await Promise.all(
      rooms.map(async (r) => {
        const room = await this.ctx.creator.getRoomState(r.roomId);
        const current = room?.state.get(stateKey('m.room.member', userId));
        if (!room || (current?.content as any)?.membership !== 'join') return;
        const content: Record<string, any> = { ...(current!.content as Record<string, any>) };
        delete content.displayname;
        delete content.avatar_url;
        delete content.reason;
        if (profile.displayname !== undefined) content.displayname = profile.displayname;
        if (profile.avatar_url !== undefined) content.avatar_url = profile.avatar_url;
        try {
          await this.member(r.roomId, userId, userId, content);
        } catch {
          /* e.g. no longer allowed: the profile still changed */
        }
      }),
    );
  }
}

function validateRoomId(roomId: string): void {
  if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
}


function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortDeep(a)) === JSON.stringify(sortDeep(b));
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortDeep((v as any)[k]);
    return out;
  }
  return v;
}
