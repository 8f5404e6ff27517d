/**
 * Sync-specific reads against the rooms schema (migrations/rooms.ts).
 *
 * Every method takes a batch of rooms and costs a fixed number of statements
 * (chunked), so /sync never issues one query per room: timelines are one
 * UNION ALL of per-room `ORDER BY ... LIMIT` subqueries (each served by the
 * (room_id, stream_ordering) index; on PostgreSQL, where planning such a
 * union costs more than running it, one LATERAL subquery over arrays of
 * rooms and bounds), state groups are resolved for many groups in one
 * recursive query.
 */
import { chunks, placeholders, type Db, type Row } from '../db.js';
import {
  EVENT_COLS,
  TIMELINE,
  eventFilterSql,
  eventFromRow,
  eventsById,
  stateGroupsOfEvents,
  txnIdsOfEvents,
  type EventFilterSql,
} from '../rooms/event-sql.js';
import type { StoredEvent } from '../rooms/store.js';
import { eventsPositionFor, eventsUpperBound, hasWriterParts, type EventsPosition } from '../../streams/tokens.js';

/** An events position: a plain number (one writer) or per writer (streams/tokens.ts). */
export type EventsBound = number | EventsPosition;

const asPosition = (b: EventsBound): EventsPosition => (typeof b === 'number' ? { min: b } : b);

/**
 * SQL for the events rows in (from, to], writer by writer: a row of writer
 * W is in it iff from(W) < stream_ordering <= to(W), where a writer a
 * position does not name stands at its minimum. Outer bounds keep the
 * (…, stream_ordering) indexes in use; the per-writer condition is only
 * added when a position names a writer ahead of its minimum (never with a
 * single writer). `col`/`inst`: the stream ordering and instance columns.
 */
export function eventsRangeSql(from: EventsBound, to: EventsBound, params: unknown[], col = 'stream_ordering', inst = 'instance_name'): string {
  const f = asPosition(from);
  const t = asPosition(to);
  if (!hasWriterParts(f) && !hasWriterParts(t)) {
    params.push(f.min, t.min);
    return `${col} > ? AND ${col} <= ?`;
  }
  params.push(f.min, eventsUpperBound(t));
  const writers = [...new Set([...Object.keys(f.writers ?? {}), ...Object.keys(t.writers ?? {})])];
  const cases = writers.map((w) => {
    params.push(w, eventsPositionFor(f, w), eventsPositionFor(t, w));
    return `WHEN ? THEN (${col} > ? AND ${col} <= ?)`;
  });
  params.push(f.min, t.min);
  return `${col} > ? AND ${col} <= ? AND (CASE ${inst} ${cases.join(' ')} ELSE (${col} > ? AND ${col} <= ?) END)`;
}

/** Whether (from, to] is empty for every writer. */
function emptyRange(from: EventsBound, to: EventsBound): boolean {
  const f = asPosition(from);
  const t = asPosition(to);
  if (f.min < t.min) return false;
  return Object.keys(t.writers ?? {}).every((w) => eventsPositionFor(t, w) <= eventsPositionFor(f, w));
}

/** Rooms per UNION ALL statement. */
const ROOMS_PER_QUERY = 50;

/** A timeline filter in SQL terms (types, senders, contains_url, ignored users). */
export type TimelineFilterSql = EventFilterSql;

export interface TimelineRange {
  roomId: string;
  /** Exclusive lower bound (stream ordering, or per writer). */
  from: EventsBound;
  /** Inclusive upper bound. */
  to: EventsBound;
}

export interface MembershipAt {
  roomId: string;
  membership: string;
  eventId: string;
  streamOrdering: number;
  sender?: string;
}

/** What a timeline read also says of its events (SyncStore.timelines). */
export interface TimelineExtras {
  /** Filled with the ids of the events read that another event relates to. */
  related: Set<string>;
  /** Filled with the sending device and transaction id of the events read that a client sent. */
  txns: Map<string, { deviceId: string; txnId: string }>;
}

/** Whether any event relates to the row's event (`anyRelations`, per row: one probe of the relations index). */
const RELATED_COL = 'EXISTS (SELECT 1 FROM events rel WHERE rel.relates_to_id = events.event_id) AS related';

export class SyncStore {
  constructor(private readonly db: Db) {}

  /**
   * The newest `limit` timeline events of each range, oldest first per room.
   * Ask for limit+1 to learn whether a timeline is limited. With `extras`,
   * what else the same statement can say of the events read (timeline reads
   * are shared between viewers, so not per viewer): which ones any event
   * relates to (what `anyRelations` answers), and the sending device and
   * transaction id of those sent by a client (what `txnIds` answers for the
   * viewer who sent them).
   */
  async timelines(ranges: TimelineRange[], limit: number, filter?: TimelineFilterSql, extras?: TimelineExtras): Promise<Map<string, StoredEvent[]>> {
    const cols = extras ? `${EVENT_COLS}, ${RELATED_COL}, txn_device_id, txn_id` : EVENT_COLS;
    const note = (row: Row) => {
      if (!extras) return;
      if (Number(row.related) > 0) extras.related.add(row.event_id as string);
      if (row.txn_id !== null && row.txn_id !== undefined && row.txn_device_id !== null && row.txn_device_id !== undefined) {
        extras.txns.set(row.event_id as string, { deviceId: String(row.txn_device_id), txnId: String(row.txn_id) });
      }
    };
    const out = new Map<string, StoredEvent[]>();
    for (const r of ranges) out.set(r.roomId, []);
    if (limit <= 0) return out;
    if (this.db.engine === 'postgres' && ranges.length > 1 && ranges.every((r) => !hasWriterParts(asPosition(r.from)) && !hasWriterParts(asPosition(r.to)))) {
      // PostgreSQL plans a UNION ALL of 50 subqueries in 10-20 ms (more than
      // running it); one LATERAL subquery over arrays of rooms and bounds is
      // planned once and still walks the (room_id, stream_ordering) index per room.
      const params: unknown[] = [ranges.map((r) => r.roomId), ranges.map((r) => asPosition(r.from).min), ranges.map((r) => asPosition(r.to).min)];
      const f = eventFilterSql(filter, params);
      params.push(limit);
      const rows = await this.db.query(
        `SELECT t.* FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS r(rid, lo, hi)
         CROSS JOIN LATERAL (SELECT ${cols} FROM events
           WHERE room_id = r.rid AND stream_ordering > r.lo AND stream_ordering <= r.hi AND ${TIMELINE}${f}
           ORDER BY stream_ordering DESC LIMIT ?) AS t`,
        params,
      );
      for (const row of rows) {
        out.get(row.room_id)!.push(eventFromRow(row));
        note(row);
      }
      for (const list of out.values()) list.sort((a, b) => a.streamOrdering - b.streamOrdering);
      return out;
    }
    for (const part of chunks(ranges, ROOMS_PER_QUERY)) {
      const params: unknown[] = [];
      const subs = part.map((r, i) => {
        params.push(r.roomId);
        const range = eventsRangeSql(r.from, r.to, params);
        const f = eventFilterSql(filter, params);
        params.push(limit);
        return `SELECT * FROM (SELECT ${cols} FROM events WHERE room_id = ? AND ${range} AND ${TIMELINE}${f}
          ORDER BY stream_ordering DESC LIMIT ?) AS t${i}`;
      });
      const rows = await this.db.query(subs.join(' UNION ALL '), params);
      for (const row of rows) {
        out.get(row.room_id)!.push(eventFromRow(row));
        note(row);
      }
    }
    for (const list of out.values()) list.sort((a, b) => a.streamOrdering - b.streamOrdering);
    return out;
  }

  /** Rooms (of the given ones) with any timeline event in (from, to]. */
  async roomsWithEvents(roomIds: string[], from: EventsBound, to: EventsBound): Promise<Set<string>> {
    const out = new Set<string>();
    if (emptyRange(from, to)) return out;
    for (const part of chunks(roomIds, 500)) {
      const params: unknown[] = [];
      const range = eventsRangeSql(from, to, params);
      const rows = await this.db.query(
        `SELECT DISTINCT room_id FROM events WHERE ${range} AND outlier = 0
         AND room_id IN (${placeholders(part.length)})`,
        [...params, ...part],
      );
      for (const r of rows) out.add(r.room_id);
    }
    return out;
  }

  /** Newest timeline event at or before `to` in each room (for state when a timeline is empty). */
  async lastEventIds(ranges: Array<{ roomId: string; to: EventsBound }>): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks(ranges, ROOMS_PER_QUERY)) {
      const params: unknown[] = [];
      const subs = part.map((r, i) => {
        params.push(r.roomId);
        const upTo = typeof r.to === 'number' || !hasWriterParts(r.to) ? (params.push(asPosition(r.to).min), 'stream_ordering <= ?') : eventsRangeSql(-1, r.to, params);
        return `SELECT * FROM (SELECT room_id, event_id FROM events WHERE room_id = ? AND ${upTo} AND ${TIMELINE}
          ORDER BY stream_ordering DESC LIMIT 1) AS t${i}`;
      });
      for (const r of await this.db.query(subs.join(' UNION ALL '), params)) out.set(r.room_id, r.event_id);
    }
    return out;
  }

  /** State events (not rejected) in (from, to] of the given rooms, oldest first. */
  async stateEventsInRange(roomIds: string[], from: EventsBound, to: EventsBound): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    if (emptyRange(from, to)) return out;
    for (const part of chunks(roomIds, 500)) {
      const params: unknown[] = [...part];
      const range = eventsRangeSql(from, to, params);
      const rows = await this.db.query(
        `SELECT ${EVENT_COLS} FROM events WHERE room_id IN (${placeholders(part.length)}) AND ${range}
         AND state_key IS NOT NULL AND ${TIMELINE} ORDER BY stream_ordering`,
        params,
      );
      for (const r of rows) out.push(eventFromRow(r));
    }
    return out;
  }

  /** Current memberships of a user (forgotten rooms excluded). */
  async currentMemberships(userId: string): Promise<MembershipAt[]> {
    const rows = await this.db.query(
      'SELECT room_id, membership, event_id, stream_ordering FROM current_membership WHERE user_id = ? AND forgotten = 0',
      [userId],
    );
    return rows.map((r) => ({ roomId: r.room_id, membership: r.membership, eventId: r.event_id, streamOrdering: Number(r.stream_ordering) }));
  }

  /**
   * Whether any membership event about the user has a stream ordering above
   * `after` (one probe of the room_memberships (user_id, stream_ordering)
   * index): the check that keeps the /sync membership cache exact.
   */
  async membershipChangedAfter(userId: string, after: number): Promise<boolean> {
    const r = await this.db.queryOne('SELECT 1 AS x FROM room_memberships WHERE user_id = ? AND stream_ordering > ? LIMIT 1', [userId, after]);
    return r !== undefined;
  }

  /** Whether any event relates to (m.relates_to) one of these events: the check before bundling aggregations. */
  async anyRelations(eventIds: string[]): Promise<boolean> {
    for (const part of chunks(eventIds, 500)) {
      const r = await this.db.queryOne(`SELECT 1 AS x FROM events WHERE relates_to_id IN (${placeholders(part.length)}) LIMIT 1`, part);
      if (r) return true;
    }
    return false;
  }

  /** Events stream rows in (from, to] (writer by writer), by position, at most `limit` (the /sync window of recent events). */
  async eventsInRange(
    from: EventsBound,
    to: EventsBound,
    limit: number,
  ): Promise<Array<{ pos: number; roomId: string; member: string | null; outlier: boolean; instance: string }>> {
    if (emptyRange(from, to)) return [];
    const params: unknown[] = [];
    const range = eventsRangeSql(from, to, params);
    params.push(limit);
    const rows = await this.db.query(
      `SELECT stream_ordering, room_id, type, state_key, outlier, instance_name FROM events WHERE ${range} ORDER BY stream_ordering LIMIT ?`,
      params,
    );
    return rows.map((r) => ({
      pos: Number(r.stream_ordering),
      roomId: r.room_id,
      member: r.type === 'm.room.member' && typeof r.state_key === 'string' ? r.state_key : null,
      outlier: !!Number(r.outlier),
      instance: r.instance_name,
    }));
  }

  /** The user's current membership in one room ('leave' style strings), undefined when none. */
  async membership(roomId: string, userId: string): Promise<string | undefined> {
    const r = await this.db.queryOne('SELECT membership FROM current_membership WHERE room_id = ? AND user_id = ?', [roomId, userId]);
    return r?.membership;
  }

  /** Joined room ids of a user (what a long-poll listens to). */
  async joinedRoomIds(userId: string): Promise<string[]> {
    const rows = await this.db.query("SELECT room_id FROM current_membership WHERE user_id = ? AND membership = 'join'", [userId]);
    return rows.map((r) => r.room_id);
  }

  /** The user's latest membership event at or before `at` in each room (absent when none). */
  async membershipsAt(userId: string, roomIds: string[], at: EventsBound): Promise<Map<string, MembershipAt>> {
    const out = new Map<string, MembershipAt>();
    const perWriter = typeof at !== 'number' && hasWriterParts(at);
    for (const part of chunks(roomIds, 500)) {
      // room_memberships has no instance column: per writer, the event's row says who wrote it.
      const params: unknown[] = [userId];
      const upTo = perWriter ? eventsRangeSql(-1, at, params, 'm.stream_ordering', 'e.instance_name') : (params.push(asPosition(at).min), 'm.stream_ordering <= ?');
      const rows = await this.db.query(
        `SELECT m.room_id, m.membership, m.event_id, m.stream_ordering, m.sender FROM room_memberships m${perWriter ? ' JOIN events e ON e.event_id = m.event_id' : ''}
         WHERE m.user_id = ? AND ${upTo} AND m.room_id IN (${placeholders(part.length)}) ORDER BY m.stream_ordering`,
        [...params, ...part],
      );
      for (const r of rows) {
        out.set(r.room_id, { roomId: r.room_id, membership: r.membership, eventId: r.event_id, streamOrdering: Number(r.stream_ordering), sender: r.sender });
      }
    }
    return out;
  }

  /** Membership events about a user in (from, to], oldest first. */
  async membershipChanges(userId: string, from: EventsBound, to: EventsBound): Promise<MembershipAt[]> {
    if (emptyRange(from, to)) return [];
    const perWriter = hasWriterParts(asPosition(from)) || hasWriterParts(asPosition(to));
    const params: unknown[] = [userId];
    const range = eventsRangeSql(from, to, params, 'm.stream_ordering', 'e.instance_name');
    const rows = await this.db.query(
      `SELECT m.room_id, m.membership, m.event_id, m.stream_ordering, m.sender FROM room_memberships m${perWriter ? ' JOIN events e ON e.event_id = m.event_id' : ''}
       WHERE m.user_id = ? AND ${range} ORDER BY m.stream_ordering`,
      params,
    );
    return rows.map((r) => ({ roomId: r.room_id, membership: r.membership, eventId: r.event_id, streamOrdering: Number(r.stream_ordering), sender: r.sender }));
  }

  /** State group holding the state after each event. */
  async stateGroupsOf(eventIds: string[]): Promise<Map<string, number>> {
    return stateGroupsOfEvents(this.db, eventIds);
  }

  /**
   * Full state (key "type\0state_key" -> event id) of many state groups in one
   * recursive query per chunk: each group's delta chain, nearer groups winning.
   */
  async stateOfGroups(groups: number[]): Promise<Map<number, Map<string, string>>> {
    const out = new Map<number, Map<string, string>>();
    for (const part of chunks([...new Set(groups)], 100)) {
      const rows = await this.db.query(
        `WITH RECURSIVE chain(root, id, prev, lvl) AS (
           SELECT id, id, prev_state_group, 0 FROM state_groups WHERE id IN (${placeholders(part.length)})
           UNION ALL
           SELECT c.root, g.id, g.prev_state_group, c.lvl + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
         )
         SELECT c.root, s.type, s.state_key, s.event_id, c.lvl FROM chain c JOIN state_groups_state s ON s.state_group = c.id
         ORDER BY c.root, c.lvl DESC`,
        part,
      );
      for (const r of rows) {
        const root = Number(r.root);
        let m = out.get(root);
        if (!m) out.set(root, (m = new Map()));
        m.set(`${r.type}\u0000${r.state_key}`, r.event_id);
      }
    }
    return out;
  }

  /**
   * The state group of each event and the full state of those groups, in one
   * statement per chunk (stateGroupsOf and stateOfGroups together). Events
   * without a group are absent from `groups`.
   */
  async stateAfterEvents(eventIds: string[]): Promise<{ groups: Map<string, number>; states: Map<number, Map<string, string>> }> {
    const groups = new Map<string, number>();
    const states = new Map<number, Map<string, string>>();
    // Chunks run concurrently (on PostgreSQL, on different connections of the pool).
    const parts = await Promise.all(
      chunks([...new Set(eventIds)], 100).map((part) =>
        // kind 0: an event's group (event_id, root); kind 1: a state row of group `root`, nearer groups (lower lvl) last.
        this.db.query(
          `WITH RECURSIVE eg(event_id, state_group) AS (
             SELECT event_id, state_group FROM events WHERE event_id IN (${placeholders(part.length)}) AND state_group IS NOT NULL
           ),
           chain(root, id, prev, lvl) AS (
             SELECT id, id, prev_state_group, 0 FROM state_groups WHERE id IN (SELECT state_group FROM eg)
             UNION ALL
             SELECT c.root, g.id, g.prev_state_group, c.lvl + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
           )
           SELECT 0 AS kind, state_group AS root, '' AS type, '' AS state_key, event_id, 0 AS lvl FROM eg
           UNION ALL
           SELECT 1, c.root, s.type, s.state_key, s.event_id, c.lvl FROM chain c JOIN state_groups_state s ON s.state_group = c.id
           ORDER BY kind, root, lvl DESC`,
          part,
        ),
      ),
    );
    for (const rows of parts) {
      for (const r of rows) {
        const root = Number(r.root);
        if (Number(r.kind) === 0) {
          groups.set(r.event_id, root);
          continue;
        }
        let m = states.get(root);
        if (!m) states.set(root, (m = new Map()));
        m.set(`${r.type}\u0000${r.state_key}`, r.event_id);
      }
    }
    return { groups, states };
  }

  async getEvents(eventIds: string[]): Promise<Map<string, StoredEvent>> {
    return eventsById(this.db, eventIds);
  }

  async roomVersions(roomIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks([...new Set(roomIds)], 500)) {
      const rows = await this.db.query(`SELECT room_id, room_version FROM rooms WHERE room_id IN (${placeholders(part.length)})`, part);
      for (const r of rows) out.set(r.room_id, r.room_version);
    }
    return out;
  }

  /** Joined and invited member counts per room. */
  async memberCounts(roomIds: string[]): Promise<Map<string, { joined: number; invited: number }>> {
    const out = new Map<string, { joined: number; invited: number }>();
    for (const id of roomIds) out.set(id, { joined: 0, invited: 0 });
    for (const part of chunks(roomIds, 500)) {
      const rows = await this.db.query(
        `SELECT room_id, membership, COUNT(*) AS n FROM current_membership WHERE room_id IN (${placeholders(part.length)})
         AND membership IN ('join', 'invite') GROUP BY room_id, membership`,
        part,
      );
      for (const r of rows) {
        const c = out.get(r.room_id)!;
        if (r.membership === 'join') c.joined = Number(r.n);
        else c.invited = Number(r.n);
      }
    }
    return out;
  }

  /**
   * Heroes: the first `n` other members per room by stream ordering, joined
   * or invited ones first, else any (left/banned) as the spec allows.
   */
  async heroes(roomIds: string[], exclude: string, n = 5): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const part of chunks(roomIds, 200)) {
      const rows = await this.db.query(
        `SELECT room_id, user_id FROM (
           SELECT room_id, user_id, ROW_NUMBER() OVER (PARTITION BY room_id
             ORDER BY CASE WHEN membership IN ('join', 'invite') THEN 0 ELSE 1 END, stream_ordering) AS rn
           FROM current_membership WHERE room_id IN (${placeholders(part.length)}) AND user_id <> ?
         ) AS h WHERE rn <= ? ORDER BY room_id, rn`,
        [...part, exclude, n],
      );
      for (const r of rows) {
        let l = out.get(r.room_id);
        if (!l) out.set(r.room_id, (l = []));
        l.push(r.user_id);
      }
    }
    return out;
  }

  /** Transaction ids of events sent by this device. */
  async txnIds(eventIds: string[], userId: string, deviceId: string): Promise<Map<string, string>> {
    return txnIdsOfEvents(this.db, eventIds, userId, deviceId);
  }

  /** Timeline events in (from, to] of the given rooms across rooms, oldest first (legacy /events). */
  async eventsAcrossRooms(roomIds: string[], from: EventsBound, to: EventsBound, limit: number): Promise<StoredEvent[]> {
    if (!roomIds.length || emptyRange(from, to)) return [];
    const out: StoredEvent[] = [];
    for (const part of chunks(roomIds, 500)) {
      const params: unknown[] = [...part];
      const range = eventsRangeSql(from, to, params);
      params.push(limit);
      const rows = await this.db.query(
        `SELECT ${EVENT_COLS} FROM events WHERE room_id IN (${placeholders(part.length)}) AND ${range}
         AND ${TIMELINE} ORDER BY stream_ordering LIMIT ?`,
        params,
      );
      for (const r of rows) out.push(eventFromRow(r));
    }
    out.sort((a, b) => a.streamOrdering - b.streamOrdering);
    return out.slice(0, limit);
  }
}
