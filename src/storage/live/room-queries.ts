/**
 * Read-only queries the live streams need from the rooms capability's tables
 * (schema: storage/migrations/rooms.ts): membership, events, current state.
 */
import { placeholders, type Queryable } from '../db.js';

export interface EventRef {
  eventId: string;
  roomId: string;
  streamOrdering: number;
  relatesToId: string | null;
  relType: string | null;
}

export interface JoinedMember {
  userId: string;
  displayName: string | null;
}

export class RoomQueries {
  constructor(private readonly db: Queryable) {}

  async membership(roomId: string, userId: string): Promise<string | undefined> {
    const row = await this.db.queryOne<{ membership: string }>(
      'SELECT membership FROM current_membership WHERE room_id = ? AND user_id = ?',
      [roomId, userId],
    );
    return row?.membership;
  }

  async isJoined(roomId: string, userId: string): Promise<boolean> {
    return (await this.membership(roomId, userId)) === 'join';
  }

  async roomExists(roomId: string): Promise<boolean> {
    return !!(await this.db.queryOne('SELECT 1 AS x FROM rooms WHERE room_id = ?', [roomId]));
  }

  async getEvent(eventId: string): Promise<EventRef | undefined> {
    const row = await this.db.queryOne<any>(
      'SELECT event_id, room_id, stream_ordering, relates_to_id, rel_type FROM events WHERE event_id = ? AND outlier = 0',
      [eventId],
    );
    if (!row) return undefined;
    return {
      eventId: row.event_id,
      roomId: row.room_id,
      streamOrdering: Number(row.stream_ordering),
      relatesToId: row.relates_to_id ?? null,
      relType: row.rel_type ?? null,
    };
  }

  /** Event JSON (the stored PDU) by id. */
  async getEventJson(eventIds: string[]): Promise<Map<string, { json: Record<string, any>; unsignedExtra?: Record<string, any>; redactedBy: string | null }>> {
    const out = new Map<string, { json: Record<string, any>; unsignedExtra?: Record<string, any>; redactedBy: string | null }>();
    for (let i = 0; i < eventIds.length; i += 500) {
      const chunk = eventIds.slice(i, i + 500);
      const rows = await this.db.query<any>(
        `SELECT event_id, json, unsigned_extra, redacted_by FROM events WHERE event_id IN (${placeholders(chunk.length)})`,
        chunk,
      );
      for (const r of rows) {
        out.set(r.event_id, {
          json: JSON.parse(r.json),
          unsignedExtra: r.unsigned_extra ? JSON.parse(r.unsigned_extra) : undefined,
          redactedBy: r.redacted_by ?? null,
        });
      }
    }
    return out;
  }

  /** Joined members whose user id ends with `:serverName`, with their room display names. */
  async joinedLocalMembers(roomId: string, serverName: string): Promise<{ members: JoinedMember[]; joinedCount: number }> {
    const rows = await this.db.query<{ user_id: string; display_name: string | null }>(
      `SELECT cm.user_id, rm.display_name FROM current_membership cm
         LEFT JOIN room_memberships rm ON rm.event_id = cm.event_id
        WHERE cm.room_id = ? AND cm.membership = 'join'`,
      [roomId],
    );
    const suffix = `:${serverName}`;
    return {
      members: rows.filter((r) => r.user_id.endsWith(suffix)).map((r) => ({ userId: r.user_id, displayName: r.display_name ?? null })),
      joinedCount: rows.length,
    };
  }

  /** Content of a current state event, with its sender. */
  async currentState(roomId: string, type: string, stateKey = ''): Promise<{ content: Record<string, any>; sender: string } | undefined> {
    const row = await this.db.queryOne<{ json: string }>(
      `SELECT e.json FROM current_state_events c JOIN events e ON e.event_id = c.event_id
        WHERE c.room_id = ? AND c.type = ? AND c.state_key = ?`,
      [roomId, type, stateKey],
    );
    if (!row) return undefined;
    const ev = JSON.parse(row.json);
    return { content: ev.content ?? {}, sender: ev.sender };
  }

  async roomVersion(roomId: string): Promise<string | undefined> {
    const row = await this.db.queryOne<{ room_version: string }>('SELECT room_version FROM rooms WHERE room_id = ?', [roomId]);
    return row?.room_version;
  }

  /** Users who share a joined room with `userId` (including the user). */
  async usersSharingRoomWith(userId: string): Promise<Set<string>> {
    const rows = await this.db.query<{ user_id: string }>(
      `SELECT DISTINCT b.user_id FROM current_membership a
         JOIN current_membership b ON b.room_id = a.room_id
        WHERE a.user_id = ? AND a.membership = 'join' AND b.membership = 'join'`,
      [userId],
    );
    const s = new Set(rows.map((r) => r.user_id));
    s.add(userId);
    return s;
  }

  async shareRoom(a: string, b: string): Promise<boolean> {
    if (a === b) return true;
    const row = await this.db.queryOne(
      `SELECT 1 AS x FROM current_membership x JOIN current_membership y ON y.room_id = x.room_id
        WHERE x.user_id = ? AND x.membership = 'join' AND y.user_id = ? AND y.membership = 'join'`,
      [a, b],
    );
    return !!row;
  }

  async deviceIds(userId: string): Promise<string[]> {
    const rows = await this.db.query<{ device_id: string }>('SELECT device_id FROM devices WHERE user_id = ?', [userId]);
    return rows.map((r) => r.device_id);
  }
}
