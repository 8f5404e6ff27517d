/**
 * Queries over the rooms capability's membership tables (current_membership,
 * room_memberships, read only) that device-list tracking needs: who shares a
 * room with whom; plus our own record of membership changes on the
 * device_lists stream (device_lists_room_changes). "Sharing" counts joined and invited members (an inviter's
 * client encrypts for invited users).
 */
import { placeholders, type Db, type Queryable } from '../db.js';

export interface MembershipChange {
  roomId: string;
  userId: string;
  membership: string;
}

export interface SharingStore {
  /** Every user (including `userId` when in a room) sharing a room with `userId`. */
  usersSharingRoomWith(userId: string): Promise<Set<string>>;
  /** Membership changes recorded at device_lists positions in (from, to] in rooms where `userId` has any membership. */
  membershipChangesInRange(userId: string, from: number, to: number): Promise<MembershipChange[]>;
  /** Records membership changes at a device_lists position. */
  addMembershipChanges(tx: Queryable, position: number, changes: MembershipChange[]): Promise<void>;
  /** The user's membership in the room before the event at `streamOrdering` (room_memberships). */
  previousMembership(roomId: string, userId: string, streamOrdering: number): Promise<string | undefined>;
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

  async addMembershipChanges(tx: Queryable, position: number, changes: MembershipChange[]): Promise<void> {
    for (const c of changes) {
      await tx.execute(
        `INSERT INTO device_lists_room_changes (stream_id, room_id, user_id, membership) VALUES (?, ?, ?, ?)
         ON CONFLICT (stream_id, room_id, user_id) DO UPDATE SET membership = excluded.membership`,
        [position, c.roomId, c.userId, c.membership],
      );
    }
  }

  async previousMembership(roomId: string, userId: string, streamOrdering: number): Promise<string | undefined> {
    const r = await this.db.queryOne<{ membership: string }>(
      `SELECT membership FROM room_memberships WHERE room_id = ? AND user_id = ? AND stream_ordering < ?
       ORDER BY stream_ordering DESC LIMIT 1`,
      [roomId, userId, streamOrdering],
    );
    return r?.membership;
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
