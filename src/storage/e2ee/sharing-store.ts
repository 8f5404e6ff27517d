/**
 * Queries over the rooms capability's membership tables (current_membership,
 * room_memberships, read only) that device-list tracking needs: who shares a
 * room with whom; plus our own record of membership changes on the
 * device_lists stream (device_lists_room_changes). "Sharing" counts joined and invited members (an inviter's
 * client encrypts for invited users).
 */
import { chunks, placeholders, type Db, type Queryable } from '../db.js';

export interface MembershipChange {
  roomId: string;
  userId: string;
  membership: string;
}

/** A membership change recorded at a device_lists position. */
export interface PositionedMembershipChange extends MembershipChange {
  position: number;
}

/** A membership event to look the user's previous membership up for. */
export interface MembershipAt {
  roomId: string;
  userId: string;
  streamOrdering: number;
}

export interface SharingStore {
  /** Every user (including `userId` when in a room) sharing a room with `userId`. */
  usersSharingRoomWith(userId: string): Promise<Set<string>>;
  /** Membership changes recorded at device_lists positions in (from, to] in rooms where `userId` has any membership. */
  membershipChangesInRange(userId: string, from: number, to: number): Promise<MembershipChange[]>;
  /**
   * Records membership changes at their device_lists positions (writes only).
   * For a position, room and user changed more than once, the last one is kept.
   */
  addMembershipChanges(tx: Queryable, changes: PositionedMembershipChange[]): Promise<void>;
  /** Each user's membership in the room before the event at its `streamOrdering` (room_memberships), in the order of `events`. */
  previousMemberships(events: MembershipAt[]): Promise<Array<string | undefined>>;
  /** Joined and invited members of the rooms. */
  membersOfRooms(roomIds: string[]): Promise<Set<string>>;
}

const SHARING = `('join', 'invite')`;

export class SqlSharingStore implements SharingStore {
  constructor(private readonly db: Db) {}

  async usersSharingRoomWith(userId: string): Promise<Set<string>> {
    const rows = await this.db.query<{ user_id: string }>(
      `SELECT DISTINCT b.user_id FROM current_membership a
       JOIN current_membership b ON a.room_id = b.room_id
       WHERE a.user_id = ? AND a.membership IN ${SHARING} AND b.membership IN ${SHARING}`,
      [userId],
    );
    return new Set(rows.map((r) => r.user_id));
  }

  async membershipChangesInRange(userId: string, from: number, to: number): Promise<MembershipChange[]> {
    if (to <= from) return [];
    const rows = await this.db.query<{ room_id: string; user_id: string; membership: string }>(
      `SELECT room_id, user_id, membership FROM device_lists_room_changes
       WHERE stream_id > ? AND stream_id <= ?
         AND room_id IN (SELECT room_id FROM current_membership WHERE user_id = ?)
       ORDER BY stream_id`,
      [from, to, userId],
    );
    return rows.map((r) => ({ roomId: r.room_id, userId: r.user_id, membership: r.membership }));
  }

  async addMembershipChanges(tx: Queryable, changes: PositionedMembershipChange[]): Promise<void> {
    // Last change wins per key (as successive upserts would), so that one multi-row statement touches each row once.
    const byKey = new Map<string, PositionedMembershipChange>();
    for (const c of changes) {
      const key = `${c.position}\u0000${c.roomId}\u0000${c.userId}`;
      byKey.delete(key);
      byKey.set(key, c);
    }
    for (const chunk of chunks([...byKey.values()], 200)) {
      const params: unknown[] = [];
      for (const c of chunk) params.push(c.position, c.roomId, c.userId, c.membership);
      await tx.execute(
        `INSERT INTO device_lists_room_changes (stream_id, room_id, user_id, membership)
         VALUES ${new Array(chunk.length).fill('(?, ?, ?, ?)').join(', ')}
         ON CONFLICT (stream_id, room_id, user_id) DO UPDATE SET membership = excluded.membership`,
        params,
      );
    }
  }

  private async previousMembership(roomId: string, userId: string, streamOrdering: number): Promise<string | undefined> {
    const r = await this.db.queryOne<{ membership: string }>(
      `SELECT membership FROM room_memberships WHERE room_id = ? AND user_id = ? AND stream_ordering < ?
       ORDER BY stream_ordering DESC LIMIT 1`,
      [roomId, userId, streamOrdering],
    );
    return r?.membership;
  }

  async previousMemberships(events: MembershipAt[]): Promise<Array<string | undefined>> {
    if (events.length === 1) return [await this.previousMembership(events[0].roomId, events[0].userId, events[0].streamOrdering)];
    const out: Array<string | undefined> = new Array(events.length).fill(undefined);
    for (let start = 0; start < events.length; start += 200) {
      const chunk = events.slice(start, start + 200);
      const params: unknown[] = [];
      chunk.forEach((e, i) => params.push(start + i, e.roomId, e.userId, e.streamOrdering));
      const rows = await this.db.query<{ i: number | string; membership: string | null }>(
        `WITH q (i, room_id, user_id, so) AS (VALUES ${new Array(chunk.length).fill('(CAST(? AS BIGINT), ?, ?, CAST(? AS BIGINT))').join(', ')})
         SELECT q.i AS i,
           (SELECT m.membership FROM room_memberships m
            WHERE m.room_id = q.room_id AND m.user_id = q.user_id AND m.stream_ordering < q.so
            ORDER BY m.stream_ordering DESC LIMIT 1) AS membership
         FROM q`,
        params,
      );
      for (const r of rows) out[Number(r.i)] = r.membership ?? undefined;
    }
    return out;
  }

  async membersOfRooms(roomIds: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < roomIds.length; i += 500) {
      const chunk = roomIds.slice(i, i + 500);
      const rows = await this.db.query<{ user_id: string }>(
        `SELECT DISTINCT user_id FROM current_membership WHERE room_id IN (${placeholders(chunk.length)}) AND membership IN ${SHARING}`,
        chunk,
      );
      for (const r of rows) out.add(r.user_id);
    }
    return out;
  }
}
