/**
 * Room aliases (client-server API "Room aliases") and the public room
 * directory ("Listing rooms").
 *
 * Alias rules: only aliases of this server can be created here; creating
 * needs membership of the room; an alias can be deleted by its creator, a
 * server admin, or a member allowed to send m.room.canonical_alias.
 *
 * Deleting an alias that the room's m.room.canonical_alias names (as `alias`
 * or in `alt_aliases`) sends a new m.room.canonical_alias without it
 * (dropCanonicalAliases below, also used by room upgrades).
 */
import type { Logger } from 'pino';
import { canSend, userPowerLevel } from '../../matrix/power-levels.js';
import { isValidRoomAlias, isValidRoomId } from '../../matrix/identifiers.js';
import { splitStateKey, stateKey } from '../../matrix/types.js';
import type { RoomStore } from '../../storage/rooms/store.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { Actor, RoomsContext } from './context.js';
import type { CachedRoom, EventCreator } from './event-creator.js';
import { membershipIn } from './room-service.js';

/** Sends a state event as a user (RoomService.sendState: routed to the room's events writer). */
export interface StateSender {
  sendState(actor: Actor, roomId: string, type: string, sk: string, content: Record<string, any>): Promise<string>;
}

export interface CanonicalAliasDeps {
  serverName: string;
  store: Pick<RoomStore, 'getAlias'>;
  creator: Pick<EventCreator, 'getRoomState'>;
  rooms: StateSender;
  logger?: Pick<Logger, 'warn'> | undefined;
}

/**
 * The local member who may change the room's canonical alias: `preferred`
 * when they are joined and have the power to, otherwise the joined local
 * member with the highest power level that suffices (ties: the smallest user
 * id). Undefined when no local member can.
 */
export function canonicalAliasSender(room: CachedRoom, serverName: string, preferred: string): string | undefined {
  const able = (u: string) => membershipIn(room, u) === 'join' && canSend(room.state, u, 'm.room.canonical_alias', true, room.rv);
  if (preferred.endsWith(':' + serverName) && able(preferred)) return preferred;
  let best: { user: string; level: number } | undefined;
  for (const key of room.state.keys()) {
    const [type, user] = splitStateKey(key);
    if (type !== 'm.room.member' || !user.endsWith(':' + serverName) || !able(user)) continue;
    const level = userPowerLevel(room.state, user, room.rv);
    if (!best || level > best.level || (level === best.level && user < best.user)) best = { user, level };
  }
  return best?.user;
}

/**
 * Takes `aliases` (which no longer point at the room: deleted, or moved by
 * an upgrade) out of the room's m.room.canonical_alias. Nothing is sent when
 * the event names none of them. The new content also leaves out entries that
 * could not be sent again: malformed ones, and other local aliases that no
 * longer point at the room. Sent as `preferredSender` when they may,
 * otherwise as a local member who may (canonicalAliasSender); when nobody
 * can, or the send fails, it is logged and skipped: the caller's own change
 * has already happened. Returns the new event's id, if one was sent.
 */
export async function dropCanonicalAliases(
  d: CanonicalAliasDeps,
  roomId: string,
  aliases: readonly string[],
  preferredSender: string,
): Promise<string | undefined> {
  const room = await d.creator.getRoomState(roomId);
  const content = room?.state.get(stateKey('m.room.canonical_alias', ''))?.content as Record<string, unknown> | undefined;
  if (!room || !content) return undefined;
  const gone = new Set(aliases);
  const alt = Array.isArray(content.alt_aliases) ? (content.alt_aliases as unknown[]) : [];
  if (![content.alias, ...alt].some((a) => typeof a === 'string' && gone.has(a))) return undefined;

  const keep = async (a: unknown): Promise<boolean> => {
    if (typeof a !== 'string' || gone.has(a) || !isValidRoomAlias(a)) return false;
    if (!a.endsWith(':' + d.serverName)) return true;
    return (await d.store.getAlias(a))?.roomId === roomId;
  };
  const next: Record<string, unknown> = { ...content };
  delete next.alias;
  delete next.alt_aliases;
  if (await keep(content.alias)) next.alias = content.alias;
  const keptAlt: string[] = [];
  for (const a of alt) if (!keptAlt.includes(a as string) && (await keep(a))) keptAlt.push(a as string);
  if (keptAlt.length) next.alt_aliases = keptAlt;

  const sender = canonicalAliasSender(room, d.serverName, preferredSender);
  if (!sender) {
    d.logger?.warn({ roomId, aliases }, 'canonical alias names removed aliases, but no local member may change it; left as is');
    return undefined;
  }
  try {
    return await d.rooms.sendState({ userId: sender }, roomId, 'm.room.canonical_alias', '', next);
  } catch (err) {
    d.logger?.warn({ err, roomId, aliases, sender }, 'could not update the canonical alias after removing aliases');
    return undefined;
  }
}

export interface PublicRoomEntry {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  join_rule?: string;
  room_type?: string;
}

export class DirectoryService {
  constructor(
    private readonly ctx: RoomsContext,
    /** Where the canonical alias update after a deletion is sent (the routed room service). */
    private readonly rooms?: StateSender,
    private readonly logger?: Pick<Logger, 'warn'>,
  ) {}

  private checkAlias(alias: string): void {
    if (!isValidRoomAlias(alias)) throw Errors.invalidParam(`Invalid room alias: ${alias}`);
  }

  async createAlias(actor: Actor, alias: string, roomId: string): Promise<void> {
    this.checkAlias(alias);
    if (!alias.endsWith(':' + this.ctx.serverName)) throw Errors.invalidParam('Room alias must be on this server');
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const room = await this.ctx.creator.getRoomState(roomId);
    if (!room) throw Errors.notFound('Unknown room');
    if (membershipIn(room, actor.userId) !== 'join') throw Errors.forbidden('You must be joined to the room to give it an alias');
    if (!(await this.ctx.store.createAlias(alias, roomId, actor.userId))) {
      throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
    }
  }

  async resolveAlias(alias: string): Promise<{ room_id: string; servers: string[] }> {
    this.checkAlias(alias);
    const row = await this.ctx.store.getAlias(alias);
    if (!row) throw Errors.notFound(`Room alias ${alias} not found`);
    return { room_id: row.roomId, servers: [this.ctx.serverName] };
  }

  async deleteAlias(actor: Actor, alias: string): Promise<void> {
    this.checkAlias(alias);
    const row = await this.ctx.store.getAlias(alias);
    if (!row) throw Errors.notFound(`Room alias ${alias} not found`);
    let allowed = row.creator === actor.userId || !!(await this.ctx.isAdmin?.(actor.userId));
    if (!allowed) {
      const room = await this.ctx.creator.getRoomState(row.roomId);
      allowed = !!room && membershipIn(room, actor.userId) === 'join' && canSend(room.state, actor.userId, 'm.room.canonical_alias', true, room.rv);
    }
    if (!allowed) throw Errors.forbidden('You may not delete this alias (not its creator, nor allowed to change the canonical alias)');
    await this.ctx.store.deleteAlias(alias);
    if (this.rooms) {
      const { serverName, store, creator } = this.ctx;
      await dropCanonicalAliases({ serverName, store, creator, rooms: this.rooms, logger: this.logger }, row.roomId, [alias], actor.userId);
    }
  }

  async roomAliases(actor: Actor, roomId: string): Promise<string[]> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const room = await this.ctx.creator.getRoomState(roomId);
    const worldReadable = (room?.state.get(stateKey('m.room.history_visibility', ''))?.content as any)?.history_visibility === 'world_readable';
    if (!room || (membershipIn(room, actor.userId) !== 'join' && !worldReadable)) {
      throw Errors.forbidden('You are not joined to this room');
    }
    return this.ctx.store.getAliasesForRoom(roomId);
  }

  // --------------------------------------------------------- room directory

  async getVisibility(roomId: string): Promise<'public' | 'private'> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const row = await this.ctx.store.getRoom(roomId);
    if (!row) throw Errors.notFound('Unknown room');
    return row.isPublic ? 'public' : 'private';
  }

  async setVisibility(actor: Actor, roomId: string, visibility: 'public' | 'private'): Promise<void> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const room = await this.ctx.creator.getRoomState(roomId);
    if (!room) throw Errors.notFound('Unknown room');
    const allowed =
      (membershipIn(room, actor.userId) === 'join' && canSend(room.state, actor.userId, 'm.room.canonical_alias', true, room.rv)) ||
      !!(await this.ctx.isAdmin?.(actor.userId));
    if (!allowed) throw Errors.forbidden('You may not change the directory visibility of this room');
    await this.ctx.store.setRoomPublic(roomId, visibility === 'public');
  }

  async publicRooms(o: { limit?: number; since?: string; searchTerm?: string }): Promise<{
    chunk: PublicRoomEntry[];
    next_batch?: string;
    prev_batch?: string;
    total_room_count_estimate: number;
  }> {
    let offset = 0;
    if (o.since !== undefined) {
      const m = /^o(\d{1,9})$/.exec(o.since);
      if (!m) throw Errors.invalidParam('Invalid since token');
      offset = Number(m[1]);
    }
    const limit = Math.min(Math.max(o.limit ?? 100, 0), 500);
    const total = await this.ctx.store.countPublicRooms();
    const term = o.searchTerm?.trim().toLowerCase();
    let entries: PublicRoomEntry[];
    let hasMore: boolean;
    if (term) {
      // Search filters on state, so it walks the whole (bounded) list.
      const all = await this.ctx.store.listPublicRooms({ offset: 0, limit: 5000 });
      const described = await Promise.all(all.map((r) => this.describe(r.roomId, r.joinedMembers)));
      const matching = described.filter((e): e is PublicRoomEntry =>
        !!e && [e.name, e.topic, e.canonical_alias, e.room_id].some((v) => v?.toLowerCase().includes(term)),
      );
      entries = matching.slice(offset, offset + limit);
      hasMore = offset + limit < matching.length;
    } else {
      const rows = await this.ctx.store.listPublicRooms({ offset, limit: limit + 1 });
      hasMore = rows.length > limit;
      const described = await Promise.all(rows.slice(0, limit).map((r) => this.describe(r.roomId, r.joinedMembers)));
      entries = described.filter((e): e is PublicRoomEntry => !!e);
    }
    const out: { chunk: PublicRoomEntry[]; next_batch?: string; prev_batch?: string; total_room_count_estimate: number } = {
      chunk: entries,
      total_room_count_estimate: total,
    };
    if (hasMore) out.next_batch = `o${offset + limit}`;
    if (offset > 0) out.prev_batch = `o${Math.max(0, offset - limit)}`;
    return out;
  }

  private async describe(roomId: string, joined: number): Promise<PublicRoomEntry | undefined> {
    const room = await this.ctx.creator.getRoomState(roomId);
    if (!room) return undefined;
    const c = (type: string): Record<string, any> | undefined => room.state.get(stateKey(type, ''))?.content as any;
    const e: PublicRoomEntry = {
      room_id: roomId,
      num_joined_members: joined,
      world_readable: c('m.room.history_visibility')?.history_visibility === 'world_readable',
      guest_can_join: c('m.room.guest_access')?.guest_access === 'can_join',
    };
    const name = c('m.room.name')?.name;
    const topic = c('m.room.topic')?.topic;
    const alias = c('m.room.canonical_alias')?.alias;
    const avatar = c('m.room.avatar')?.url;
    const rule = c('m.room.join_rules')?.join_rule;
    const type = c('m.room.create')?.type;
    if (typeof name === 'string' && name) e.name = name;
    if (typeof topic === 'string' && topic) e.topic = topic;
    if (typeof alias === 'string') e.canonical_alias = alias;
    if (typeof avatar === 'string') e.avatar_url = avatar;
    if (typeof rule === 'string') e.join_rule = rule;
    if (typeof type === 'string') e.room_type = type;
    return e;
  }
}
