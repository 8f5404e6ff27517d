/**
 * Room aliases (client-server API "Room aliases") and the public room
 * directory ("Listing rooms").
 *
 * Alias rules: only aliases of this server can be created here; creating
 * needs membership of the room; an alias can be deleted by its creator, a
 * server admin, or a member allowed to send m.room.canonical_alias.
 */
import { canSend } from '../../matrix/power-levels.js';
import { isValidRoomAlias, isValidRoomId } from '../../matrix/identifiers.js';
import { stateKey } from '../../matrix/types.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { Actor, RoomsContext } from './context.js';
import { membershipIn } from './room-service.js';

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
  constructor(private readonly ctx: RoomsContext) {}

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
