/**
 * What a user may learn about a room without being in it, shared by the
 * space hierarchy and room summaries: the public-rooms chunk fields, and
 * whether the room is "accessible" (joined/invited, world_readable, a
 * public/knock join rule, or restricted with membership of an allowed room).
 */
import { stateKey, type Membership } from '../../matrix/types.js';
import type { RoomStore } from '../../storage/rooms/store.js';
import type { CachedRoom, EventCreator } from '../rooms/event-creator.js';

export interface RoomInfo {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  join_rule: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  room_type?: string;
  allowed_room_ids?: string[];
  encryption?: string;
  room_version: string;
}

export function stateContent(room: CachedRoom, type: string, sk = ''): Record<string, any> | undefined {
  return room.state.get(stateKey(type, sk))?.content as Record<string, any> | undefined;
}

export function membershipOf(room: CachedRoom, userId: string | undefined): Membership | undefined {
  if (!userId) return undefined;
  const m = stateContent(room, 'm.room.member', userId)?.membership;
  return typeof m === 'string' ? (m as Membership) : undefined;
}

/** Room ids a restricted join rule allows joining through. */
export function allowedRoomIds(room: CachedRoom): string[] {
  const allow = stateContent(room, 'm.room.join_rules')?.allow;
  if (!Array.isArray(allow)) return [];
  return allow
    .filter((a: any) => a && a.type === 'm.room_membership' && typeof a.room_id === 'string')
    .map((a: any) => a.room_id as string);
}

export class RoomInfoReader {
  constructor(
    private readonly creator: EventCreator,
    private readonly roomStore: RoomStore,
  ) {}

  room(roomId: string): Promise<CachedRoom | undefined> {
    return this.creator.getRoomState(roomId);
  }

  /** Whether `userId` (undefined: anonymous) may see the room's summary. */
  async accessible(room: CachedRoom, userId: string | undefined): Promise<boolean> {
    const m = membershipOf(room, userId);
    if (m === 'ban') return false;
    if (m === 'join' || m === 'invite' || m === 'knock') return true;
    if (stateContent(room, 'm.room.history_visibility')?.history_visibility === 'world_readable') return true;
    const rule = stateContent(room, 'm.room.join_rules')?.join_rule;
    if (rule === 'public' || rule === 'knock' || rule === 'knock_restricted') return true;
    if ((rule === 'restricted' || rule === 'knock_restricted') && userId) {
      for (const id of allowedRoomIds(room)) {
        if ((await this.roomStore.getMembership(id, userId))?.membership === 'join') return true;
      }
    }
    return false;
  }

  /** The public-rooms-style description of a room (one count query). */
  async describe(room: CachedRoom): Promise<RoomInfo> {
    const c = (type: string) => stateContent(room, type);
    const counts = await this.roomStore.joinedCounts([room.roomId]);
    const info: RoomInfo = {
      room_id: room.roomId,
      num_joined_members: counts.get(room.roomId) ?? 0,
      world_readable: c('m.room.history_visibility')?.history_visibility === 'world_readable',
      guest_can_join: c('m.room.guest_access')?.guest_access === 'can_join',
      join_rule: typeof c('m.room.join_rules')?.join_rule === 'string' ? c('m.room.join_rules')!.join_rule : 'invite',
      room_version: room.rv.id,
    };
    const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    const name = str(c('m.room.name')?.name);
    const topic = str(c('m.room.topic')?.topic);
    const alias = str(c('m.room.canonical_alias')?.alias);
    const avatar = str(c('m.room.avatar')?.url);
    const type = str(c('m.room.create')?.type);
    const enc = str(c('m.room.encryption')?.algorithm);
    if (name) info.name = name;
    if (topic) info.topic = topic;
    if (alias) info.canonical_alias = alias;
    if (avatar) info.avatar_url = avatar;
    if (type) info.room_type = type;
    if (enc) info.encryption = enc;
    const allowed = allowedRoomIds(room);
    if (allowed.length && (info.join_rule === 'restricted' || info.join_rule === 'knock_restricted')) info.allowed_room_ids = allowed;
    return info;
  }
}
