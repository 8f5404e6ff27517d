/**
 * Storage for the rooms-extra capability: relation queries (relations,
 * threads, bundled aggregations), the search index, event and user reports
 * and the user directory. Reads the rooms capability's tables (events,
 * current_membership, ...) and owns event_search / event_reports /
 * user_reports.
 * One implementation on the shared Db interface, both engines.
 */
import { chunks, placeholders, type Db } from '../db.js';
import { EVENT_COLS, TIMELINE, eventFromRow, topoBoundsSql, topoOrderedEvents } from '../rooms/event-sql.js';
import type { StoredEvent, TopoPosition } from '../rooms/store.js';
import { eventsRangeSql } from '../sync/sync-store.js';
import { eventsClamp, eventsCovers, eventsJoin, type EventsPosition } from '../../streams/tokens.js';

export interface ThreadRow {
  rootId: string;
  latest: number;
}

export interface ThreadAggregate {
  count: number;
  latestStream: number;
  participated: boolean;
}

export interface SearchHit {
  eventId: string;
  roomId: string;
  streamOrdering: number;
  rank: number;
}

export interface SearchQuery {
  /** Words (already split and cleaned); all must match (prefix match). */
  words: string[];
  roomIds: string[];
  keys: string[];
  senders?: string[];
  notSenders?: string[];
  orderBy: 'rank' | 'recent';
  /** recent: only hits below this stream position; rank: skip this many. */
  before?: number;
  offset?: number;
  limit: number;
  /**
   * Several event persisters: each room's hits only up to this position
   * (its persister's position as the reader sees it). Absent: no ceiling.
   */
  roomUpTo?: (roomId: string) => number;
}

export interface DirectoryUser {
  userId: string;
  displayName: string | null;
  avatarUrl: string | null;
}

/** The indexed text of an event: key -> value (content.body, content.name, content.topic). */
export function searchableFields(type: string, content: Record<string, any> | undefined): Array<[string, string]> {
  if (!content) return [];
  const pick = (key: string, field: string): Array<[string, string]> =>
    typeof content[field] === 'string' && content[field] ? [[key, content[field] as string]] : [];
  if (type === 'm.room.message') return pick('content.body', 'body');
  if (type === 'm.room.name') return pick('content.name', 'name');
  if (type === 'm.room.topic') return pick('content.topic', 'topic');
  return [];
}

export class RoomsExtraStore {
  constructor(private readonly db: Db) {}

  // ------------------------------------------------------------ relations

  /**
   * Events relating to any of `parents`, paginated in topological order
   * (the same token semantics as /messages: dir 'b' = at or before `from`).
   */
  async relations(
    roomId: string,
    parents: string[],
    o: { relType?: string; eventType?: string; from: TopoPosition | null; to: TopoPosition | null; dir: 'f' | 'b'; limit: number },
  ): Promise<StoredEvent[]> {
    if (!parents.length) return [];
    const params: unknown[] = [roomId, ...parents];
    let where = `room_id = ? AND relates_to_id IN (${placeholders(parents.length)}) AND ${TIMELINE}`;
    if (o.relType) {
      where += ' AND rel_type = ?';
      params.push(o.relType);
    }
    if (o.eventType) {
      where += ' AND type = ?';
      params.push(o.eventType);
    }
    where += topoBoundsSql(o, params);
    return topoOrderedEvents(this.db, where, params, o.dir, o.limit);
  }

  /** Ids of events relating to any of `parents` (for recursive relations). */
  async childIds(roomId: string, parents: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const part of chunks(parents, 500)) {
      const rows = await this.db.query(
        `SELECT event_id FROM events WHERE room_id = ? AND relates_to_id IN (${placeholders(part.length)}) AND ${TIMELINE}`,
        [roomId, ...part],
      );
      for (const r of rows) out.push(r.event_id);
    }
    return out;
  }

  /**
   * Thread roots of a room by latest activity (newest first), optionally
   * only threads `participant` started or replied to.
   */
  async threads(roomId: string, o: { before?: number; limit: number; participant?: string }): Promise<ThreadRow[]> {
    const params: unknown[] = [roomId];
    let having = '';
    if (o.before !== undefined) {
      having = 'HAVING MAX(stream_ordering) < ?';
      params.push(o.before);
    }
    let participated = '';
    if (o.participant) {
      participated = `AND (relates_to_id IN (SELECT relates_to_id FROM events WHERE room_id = ? AND rel_type = 'm.thread' AND sender = ?)
        OR relates_to_id IN (SELECT event_id FROM events WHERE room_id = ? AND sender = ?))`;
    }
    const sql = `SELECT relates_to_id, MAX(stream_ordering) AS latest FROM events
      WHERE room_id = ? AND rel_type = 'm.thread' AND ${TIMELINE} AND redacted_by IS NULL ${participated}
      GROUP BY relates_to_id ${having} ORDER BY latest DESC LIMIT ?`;
    const p: unknown[] = [roomId];
    if (o.participant) p.push(roomId, o.participant, roomId, o.participant);
    if (o.before !== undefined) p.push(o.before);
    p.push(o.limit);
    const rows = await this.db.query(sql, p);
    return rows.map((r) => ({ rootId: r.relates_to_id, latest: Number(r.latest) }));
  }

  /** Thread summaries of the given roots (one grouped query). */
  async threadAggregates(rootIds: string[], viewer: string | undefined): Promise<Map<string, ThreadAggregate>> {
    const out = new Map<string, ThreadAggregate>();
    for (const part of chunks(rootIds, 500)) {
      const rows = await this.db.query(
        `SELECT relates_to_id, COUNT(*) AS c, MAX(stream_ordering) AS latest,
           SUM(CASE WHEN sender = ? THEN 1 ELSE 0 END) AS mine
         FROM events WHERE relates_to_id IN (${placeholders(part.length)}) AND rel_type = 'm.thread'
           AND ${TIMELINE} AND redacted_by IS NULL
         GROUP BY relates_to_id`,
        [viewer ?? '', ...part],
      );
      for (const r of rows) {
        out.set(r.relates_to_id, { count: Number(r.c), latestStream: Number(r.latest), participated: Number(r.mine) > 0 });
      }
    }
    return out;
  }

  /** m.replace and m.reference relations of the given events (unredacted). */
  async editsAndReferences(parentIds: string[]): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (const part of chunks(parentIds, 500)) {
      const rows = await this.db.query(
        `SELECT ${EVENT_COLS} FROM events WHERE relates_to_id IN (${placeholders(part.length)})
           AND rel_type IN ('m.replace', 'm.reference') AND ${TIMELINE} AND redacted_by IS NULL
         ORDER BY stream_ordering`,
        part,
      );
      out.push(...rows.map(eventFromRow));
    }
    return out;
  }

  async eventsByStream(positions: number[]): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (const part of chunks(positions, 500)) {
      const rows = await this.db.query(`SELECT ${EVENT_COLS} FROM events WHERE stream_ordering IN (${placeholders(part.length)})`, part);
      out.push(...rows.map(eventFromRow));
    }
    return out;
  }

  // --------------------------------------------------------------- search

  /**
   * Indexes searchable events in (indexed, upTo], at most `batch` of them;
   * returns true when it caught up. With several event persisters both are
   * positions writer by writer (a row of writer W is indexed once the
   * index's part for W reaches it), so a slow persister holds back only its
   * own rows. Safe against a concurrent indexer: the whole position moves
   * by one compare-and-set and rows are written in the same transaction.
   */
  async indexSearch(upTo: number | EventsPosition, batch = 1000): Promise<boolean> {
    const target: EventsPosition = typeof upTo === 'number' ? { min: upTo } : upTo;
    return this.db.transaction(async (tx) => {
      const row = await tx.queryOne('SELECT stream_ordering, writers FROM event_search_position WHERE id = 1');
      const stored = { min: Number(row?.stream_ordering ?? 0), writers: String(row?.writers ?? '') };
      const pos = decodeIndexWriters(stored.min, stored.writers);
      if (eventsCovers(pos, target)) return true;
      const params: unknown[] = [];
      const range = eventsRangeSql(pos, target, params);
      params.push(batch);
      const rows = await tx.query(
        `SELECT stream_ordering, event_id, room_id, sender, type, origin_server_ts, json FROM events
         WHERE ${range} AND type IN ('m.room.message', 'm.room.name', 'm.room.topic')
           AND ${TIMELINE} ORDER BY stream_ordering LIMIT ?`,
        params,
      );
      const done = rows.length < batch;
      // A full batch covers every row of the range up to its last one.
      const newPos = eventsJoin(pos, done ? target : eventsClamp(target, Number(rows[rows.length - 1]!.stream_ordering)));
      const values: unknown[][] = [];
      for (const r of rows) {
        let content: Record<string, any> | undefined;
        try {
          content = JSON.parse(r.json).content;
        } catch {
          continue;
        }
        for (const [key, value] of searchableFields(r.type, content)) {
          // PostgreSQL text cannot hold NUL: one such message would stop the indexer for good.
          const text = value.includes('\u0000') ? value.replaceAll('\u0000', ' ') : value;
          values.push([r.event_id, r.room_id, r.sender, key, Number(r.stream_ordering), Number(r.origin_server_ts), text]);
        }
      }
      for (const part of chunks(values, 200)) {
        if (this.db.engine === 'sqlite') {
          await tx.execute(
            `INSERT INTO event_search (event_id, room_id, sender, key, stream_ordering, origin_server_ts, value)
             VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
            part.flat(),
          );
        } else {
          await tx.execute(
            `INSERT INTO event_search (event_id, room_id, sender, key, stream_ordering, origin_server_ts, value, vector)
             VALUES ${part.map(() => "(?, ?, ?, ?, ?, ?, ?, to_tsvector('english', ?))").join(', ')}
             ON CONFLICT (event_id, key) DO NOTHING`,
            part.flatMap((v) => [...v, v[6]]),
          );
        }
      }
      const moved = await tx.execute(
        'UPDATE event_search_position SET stream_ordering = ?, writers = ? WHERE id = 1 AND stream_ordering = ? AND writers = ?',
        [newPos.min, encodeIndexWriters(newPos), stored.min, stored.writers],
      );
      if (moved !== 1) throw new ConcurrentIndex();
      return done;
    }).catch((e) => {
      if (e instanceof ConcurrentIndex) return false;
      throw e;
    });
  }

  /** Full-text search over event_search; also returns the total match count. */
  async search(q: SearchQuery): Promise<{ hits: SearchHit[]; count: number }> {
    if (!q.words.length || !q.roomIds.length || !q.keys.length) return { hits: [], count: 0 };
    const sqlite = this.db.engine === 'sqlite';
    const params: unknown[] = [];
    let from: string;
    let rank: string;
    if (sqlite) {
      // FTS5 query: every word as a quoted prefix term (implicit AND).
      params.push(q.words.map((w) => `"${w.replace(/"/g, '""')}"*`).join(' '));
      from = 'event_search WHERE event_search MATCH ?';
      rank = '-bm25(event_search)';
    } else {
      params.push(q.words.map((w) => `'${w.replace(/'/g, "''")}':*`).join(' & '));
      from = "event_search, to_tsquery('english', ?) AS q WHERE vector @@ q";
      rank = 'ts_rank_cd(vector, q)';
    }
    let where = ` AND room_id IN (${placeholders(q.roomIds.length)}) AND key IN (${placeholders(q.keys.length)})`;
    params.push(...q.roomIds, ...q.keys);
    if (q.roomUpTo) where += roomCeilingsSql(q.roomIds, q.roomUpTo, params);
    if (q.senders) {
      if (!q.senders.length) return { hits: [], count: 0 };
      where += ` AND sender IN (${placeholders(q.senders.length)})`;
      params.push(...q.senders);
    }
    if (q.notSenders?.length) {
      where += ` AND sender NOT IN (${placeholders(q.notSenders.length)})`;
      params.push(...q.notSenders);
    }
    const countRow = await this.db.queryOne(`SELECT COUNT(*) AS c FROM ${from}${where}`, params);
    const pageParams = [...params];
    let page = where;
    if (q.orderBy === 'recent' && q.before !== undefined) {
      page += ' AND stream_ordering < ?';
      pageParams.push(q.before);
    }
    const order = q.orderBy === 'recent' ? 'stream_ordering DESC' : `score DESC, stream_ordering DESC`;
    pageParams.push(q.limit, q.orderBy === 'rank' ? (q.offset ?? 0) : 0);
    const rows = await this.db.query(
      `SELECT event_id, room_id, stream_ordering, ${rank} AS score FROM ${from}${page} ORDER BY ${order} LIMIT ? OFFSET ?`,
      pageParams,
    );
    return {
      count: Number(countRow?.c ?? 0),
      hits: rows.map((r) => ({ eventId: r.event_id, roomId: r.room_id, streamOrdering: Number(r.stream_ordering), rank: Number(r.score) })),
    };
  }

  // -------------------------------------------------------------- reports

  async addReport(r: { roomId: string; eventId: string | null; userId: string; reason: string | null; score: number | null; content: Record<string, unknown> }): Promise<number> {
    return this.insertNumbered(
      'event_reports',
      'INSERT INTO event_reports (id, received_ts, room_id, event_id, user_id, reason, score, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      (id) => [id, Date.now(), r.roomId, r.eventId, r.userId, r.reason, r.score, JSON.stringify(r.content)],
    );
  }

  async reportsForRoom(roomId: string): Promise<Array<{ id: number; eventId: string | null; userId: string; reason: string | null; score: number | null }>> {
    const rows = await this.db.query('SELECT id, event_id, user_id, reason, score FROM event_reports WHERE room_id = ? ORDER BY id', [roomId]);
    return rows.map((r) => ({ id: Number(r.id), eventId: r.event_id ?? null, userId: r.user_id, reason: r.reason ?? null, score: r.score == null ? null : Number(r.score) }));
  }

  /** A report of a user (`userId` reports `targetUserId`). */
  async addUserReport(r: { targetUserId: string; userId: string; reason: string }): Promise<number> {
    return this.insertNumbered(
      'user_reports',
      'INSERT INTO user_reports (id, received_ts, target_user_id, user_id, reason) VALUES (?, ?, ?, ?, ?)',
      (id) => [id, Date.now(), r.targetUserId, r.userId, r.reason],
    );
  }

  async reportsForUser(targetUserId: string): Promise<Array<{ id: number; receivedTs: number; userId: string; reason: string }>> {
    const rows = await this.db.query('SELECT id, received_ts, user_id, reason FROM user_reports WHERE target_user_id = ? ORDER BY id', [targetUserId]);
    return rows.map((r) => ({ id: Number(r.id), receivedTs: Number(r.received_ts), userId: r.user_id, reason: r.reason }));
  }

  /** Inserts a row whose id is the table's next (MAX + 1), retrying on an id race. */
  private async insertNumbered(table: 'event_reports' | 'user_reports', sql: string, params: (id: number) => unknown[]): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction(async (tx) => {
          const id = Number((await tx.queryOne(`SELECT MAX(id) AS m FROM ${table}`))?.m ?? 0) + 1;
          await tx.execute(sql, params(id));
          return id;
        });
      } catch (e: any) {
        // An id race with a concurrent report (unique violation): retry after
        // a short random pause so that racing writers do not collide again.
        const race = e?.code === '23505' || /UNIQUE constraint/.test(String(e?.message));
        if (!race || attempt >= 10) throw e;
        await new Promise((res) => setTimeout(res, Math.random() * 5 * (attempt + 1)));
      }
    }
  }

  // ------------------------------------------------------- user directory

  /** Rooms whose current join rule is public (the directory's "public rooms"). */
  async publicJoinRuleRooms(): Promise<string[]> {
    const rows = await this.db.query(
      `SELECT c.room_id, e.json FROM current_state_events c JOIN events e ON e.event_id = c.event_id
       WHERE c.type = 'm.room.join_rules' AND c.state_key = ''`,
    );
    const out: string[] = [];
    for (const r of rows) {
      try {
        if (JSON.parse(r.json).content?.join_rule === 'public') out.push(r.room_id);
      } catch {
        /* skip */
      }
    }
    return out;
  }

  /**
   * Users matching every word (substring of user id or display name),
   * joined to one of `roomIds` or (allLocal) any local, non-deactivated user.
   */
  async searchUsers(o: { words: string[]; roomIds: string[]; allLocal: boolean; limit: number }): Promise<DirectoryUser[]> {
    const like = (w: string) => '%' + w.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
    const match = (idCol: string, nameCol: string, params: unknown[]) =>
      o.words
        .map((w) => {
          params.push(like(w), like(w));
          return `(LOWER(${idCol}) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(${nameCol}, '')) LIKE ? ESCAPE '\\')`;
        })
        .join(' AND ') || '1 = 1';
    const parts: string[] = [];
    const params: unknown[] = [];
    if (o.roomIds.length) {
      const inRooms = `m.room_id IN (${placeholders(o.roomIds.length)})`;
      params.push(...o.roomIds);
      const cond = match('m.user_id', 'COALESCE(p.displayname, rm.display_name)', params);
      parts.push(`SELECT m.user_id AS user_id, COALESCE(p.displayname, rm.display_name) AS displayname,
          COALESCE(p.avatar_url, rm.avatar_url) AS avatar_url
        FROM current_membership m
        LEFT JOIN profiles p ON p.user_id = m.user_id
        LEFT JOIN room_memberships rm ON rm.event_id = m.event_id
        WHERE m.membership = 'join' AND ${inRooms} AND ${cond}`);
    }
    if (o.allLocal) {
      const cond = match('u.name', 'p.displayname', params);
      parts.push(`SELECT u.name AS user_id, p.displayname AS displayname, p.avatar_url AS avatar_url
        FROM users u LEFT JOIN profiles p ON p.user_id = u.name
        WHERE u.deactivated = 0 AND ${cond}`);
    }
    if (!parts.length) return [];
    params.push(o.limit);
    const rows = await this.db.query(
      `SELECT user_id, MAX(displayname) AS displayname, MAX(avatar_url) AS avatar_url
       FROM (${parts.join(' UNION ALL ')}) AS d GROUP BY user_id ORDER BY user_id LIMIT ?`,
      params,
    );
    return rows.map((r) => ({ userId: r.user_id, displayName: r.displayname ?? null, avatarUrl: r.avatar_url ?? null }));
  }

  /** Rooms where the user is currently joined. */
  async joinedRooms(userId: string): Promise<string[]> {
    const rows = await this.db.query("SELECT room_id FROM current_membership WHERE user_id = ? AND membership = 'join'", [userId]);
    return rows.map((r) => r.room_id);
  }
}

class ConcurrentIndex extends Error {}

/** The index position's writer parts as stored: a JSON object of the writers ahead of the minimum, sorted; '' when none. */
export function encodeIndexWriters(p: EventsPosition): string {
  const ahead = Object.entries(p.writers ?? {})
    .filter(([, pos]) => pos > p.min)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return ahead.length ? JSON.stringify(Object.fromEntries(ahead)) : '';
}

function decodeIndexWriters(min: number, writers: string): EventsPosition {
  if (!writers) return { min };
  const parsed = JSON.parse(writers) as Record<string, number>;
  return { min, writers: Object.fromEntries(Object.entries(parsed).map(([w, pos]) => [w, Number(pos)])) };
}

/**
 * ` AND (...)`: each room's rows up to its ceiling, rooms grouped by ceiling
 * (one group per events persister).
 */
export function roomCeilingsSql(roomIds: string[], upTo: (roomId: string) => number, params: unknown[]): string {
  const groups = new Map<number, string[]>();
  for (const r of roomIds) {
    const c = upTo(r);
    (groups.get(c) ?? groups.set(c, []).get(c)!).push(r);
  }
  const parts: string[] = [];
  for (const [ceiling, rooms] of groups) {
    parts.push(`(room_id IN (${placeholders(rooms.length)}) AND stream_ordering <= ?)`);
    params.push(...rooms, ceiling);
  }
  return ` AND (${parts.join(' OR ')})`;
}
