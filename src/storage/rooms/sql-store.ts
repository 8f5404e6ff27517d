/**
 * RoomStore on the shared Db interface (SQLite and PostgreSQL alike).
 *
 * Writes are batched: `persistEvents` turns a batch of events into one
 * multi-row INSERT per table, so a batch of N events costs a fixed number of
 * statements on either engine. The transaction is write-only
 * (`writeTransaction`): on SQLite it runs on the writer thread.
 */
import {
  chunks,
  DISJOINT_ROWS,
  insertMany,
  placeholders,
  unnestRows,
  writeTransaction,
  type ColumnType,
  type Db,
  type Queryable,
  type Row,
} from '../db.js';
import { splitStateKey, stateKey, type Membership, type StateIds } from '../../matrix/types.js';
import type {
  EventQueryFilter,
  EventToPersist,
  ExtraRows,
  MemberRow,
  MembershipChange,
  PersistBatch,
  PublicRoomRow,
  RoomReadAccess,
  RoomRow,
  RoomStore,
  StoredEvent,
  TopoPosition,
  ViewerPage,
} from './store.js';
import {
  EVENT_COLS,
  TIMELINE,
  eventFilterSql,
  eventFromRow,
  eventsById,
  stateGroupsOfEvents,
  topoBoundsSql,
  topoOrderedEvents,
  txnIdsOfEvents,
  type WalkBound,
} from './event-sql.js';

const T = 'text';
const B = 'bigint';
const I = 'int';
/** Column types of the rows `persistEventBatches` writes (PostgreSQL's arrays), in each INSERT's column order. */
const EVENT_TYPES: readonly ColumnType[] = [B, T, T, T, T, T, B, B, B, T, I, T, I, I, T, T, T, B, T, B, T, T];
const ROOM_TYPES: readonly ColumnType[] = [T, T, T, B];
const STATE_GROUP_TYPES: readonly ColumnType[] = [B, T, T, B, I];
const STATE_GROUP_STATE_TYPES: readonly ColumnType[] = [B, T, T, T, T];
const CURRENT_STATE_TYPES: readonly ColumnType[] = [T, T, T, T, B, T];
const MEMBERSHIP_TYPES: readonly ColumnType[] = [T, T, T, T, T, B, T, T];
const CURRENT_MEMBERSHIP_TYPES: readonly ColumnType[] = [T, T, T, T, B];
const TXN_TYPES: readonly ColumnType[] = [T, T, T, T, T, B];
const EXTREMITY_TYPES: readonly ColumnType[] = [T, T];

/** Multi-row INSERT of `rows` (each an array of column values, typed as `types`). */
async function insertRows(q: Queryable, head: string, types: readonly ColumnType[], rows: unknown[][], tail = ''): Promise<void> {
  await insertMany(q, head, types, rows.flat(), tail);
}

const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function toMember(r: Row): MemberRow {
  return {
    roomId: r.room_id,
    userId: r.user_id,
    membership: r.membership,
    eventId: r.event_id,
    streamOrdering: Number(r.stream_ordering),
  };
}

/**
 * `readAccess`'s rows (parameters: room, user, room, room, user, room): the
 * current membership (k 0), the current history_visibility event (k 1), the
 * user's membership events (k 2) and the room's history_visibility events
 * (k 3).
 */
const READ_ACCESS_SQL = `SELECT 0 AS k, event_id, stream_ordering, membership, NULL AS sender, NULL AS json FROM current_membership
    WHERE room_id = ? AND user_id = ?
  UNION ALL
  SELECT 1, e.event_id, e.stream_ordering, NULL, NULL, e.json FROM current_state_events c JOIN events e ON e.event_id = c.event_id
    WHERE c.room_id = ? AND c.type = 'm.room.history_visibility' AND c.state_key = ''
  UNION ALL
  SELECT 2, event_id, stream_ordering, membership, sender, NULL FROM room_memberships WHERE room_id = ? AND user_id = ?
  UNION ALL
  SELECT 3, event_id, stream_ordering, NULL, NULL, json FROM events
    WHERE room_id = ? AND type = 'm.room.history_visibility' AND state_key = '' AND ${TIMELINE}`;

/** `READ_ACCESS_SQL`'s parameters. */
const readAccessParams = (roomId: string, userId: string): unknown[] => [roomId, userId, roomId, roomId, userId, roomId];

/** Decodes `READ_ACCESS_SQL` rows ordered by k, then stream_ordering. */
function readAccessFromRows(roomId: string, userId: string, rows: readonly Row[]): RoomReadAccess {
  const out: RoomReadAccess = { memberships: [], visibilityHistory: [] };
  for (const r of rows) {
    const k = Number(r.k);
    const streamOrdering = Number(r.stream_ordering);
    if (k === 0) out.member = { roomId, userId, membership: r.membership, eventId: r.event_id, streamOrdering };
    else if (k === 1) out.historyVisibility = JSON.parse(r.json).content ?? {};
    else if (k === 2) out.memberships.push({ roomId, userId, membership: r.membership, eventId: r.event_id, streamOrdering, sender: r.sender });
    else out.visibilityHistory.push({ streamOrdering, eventId: r.event_id, content: JSON.parse(r.json).content ?? {} });
  }
  return out;
}

/** `paginateForViewer`'s statement: EVENT_COLS, txn_id and related, in the page's order. */
function viewerPageSql(
  roomId: string,
  o: { from: WalkBound | null; to?: WalkBound | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter },
  viewer: { userId: string; deviceId?: string | null },
): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  let txn = 'NULL';
  if (viewer.deviceId) {
    // The sender's device and txn id are on the event's row.
    txn = `CASE WHEN e.sender = ? AND e.txn_device_id = ? THEN e.txn_id END`;
    params.push(viewer.userId, viewer.deviceId);
  }
  params.push(roomId);
  let where = `room_id = ? AND ${TIMELINE}`;
  where += topoBoundsSql(o, params);
  where += eventFilterSql(o.filter, params);
  params.push(o.limit);
  const order = o.dir === 'b' ? 'DESC' : 'ASC';
  return {
    sql: `SELECT ${EVENT_COLS}, ${txn} AS txn_id,
        EXISTS (SELECT 1 FROM events r WHERE r.relates_to_id = e.event_id AND r.rel_type IN ('m.thread', 'm.replace', 'm.reference')) AS related
      FROM events e WHERE ${where} ORDER BY topological_ordering ${order}, stream_ordering ${order} LIMIT ?`,
    params,
  };
}

function viewerPageFromRows(rows: readonly Row[]): ViewerPage {
  const page: ViewerPage = { events: rows.map(eventFromRow), txnIds: new Map(), related: new Set() };
  for (const r of rows) {
    if (r.txn_id != null) page.txnIds.set(r.event_id, r.txn_id);
    if (Number(r.related) > 0) page.related.add(r.event_id);
  }
  return page;
}

/** A transaction id lookup waiting for its statement. */
interface TxnLookup {
  userId: string;
  deviceId: string;
  scope: string;
  txnId: string;
  resolve: (eventId: string | undefined) => void;
  reject: (e: unknown) => void;
}

/**
 * SQLite: the rows of up to 2^k (user, device, scope, txn id) keys, as row values
 * (`sqliteTxnLookupSql(n)`: one probe of the primary key per key). The key
 * count is rounded up to a power of two (the last key repeated) so that a
 * handful of statement texts serve every batch size.
 */
export const SQLITE_TXN_LOOKUP_MAX = 64;
const sqliteTxnLookupTexts = new Map<number, string>();
export function sqliteTxnLookupSql(n: number): string {
  let sql = sqliteTxnLookupTexts.get(n);
  if (sql === undefined) {
    sql = `SELECT user_id, device_id, scope, txn_id, event_id FROM event_txn_ids
   WHERE (user_id, device_id, scope, txn_id) IN (VALUES ${new Array(n).fill('(?, ?, ?, ?)').join(', ')})`;
    sqliteTxnLookupTexts.set(n, sql);
  }
  return sql;
}

/**
 * PostgreSQL: the event ids of several (user, device, scope, txn id) keys,
 * asked as four arrays; a row per key, event_id null when absent. One primary-key
 * probe per key (a correlated subquery): with a join or IN, a generic plan
 * made while the table was small hashed the whole table on every call.
 */
export const TXN_LOOKUP_BATCH_SQL = `SELECT u.user_id, u.device_id, u.scope, u.txn_id,
     (SELECT t.event_id FROM event_txn_ids t
       WHERE t.user_id = u.user_id AND t.device_id = u.device_id AND t.scope = u.scope AND t.txn_id = u.txn_id) AS event_id
   FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS u(user_id, device_id, scope, txn_id)`;

export class SqlRoomStore implements RoomStore {
  constructor(
    private readonly db: Db,
    private readonly instanceName = 'master',
  ) {}

  // ------------------------------------------------------------------ writes

  async persistEvents(batch: PersistBatch): Promise<void> {
    await this.persistEventBatches([batch]);
  }

  async persistEventBatches(batches: readonly PersistBatch[]): Promise<void> {
    const now = Date.now();
    // Column values of each table's rows, flat (EVENT_INSERT_COLS etc. per row).
    const eventValues: unknown[] = [];
    const groupRows: unknown[][] = [];
    const groupStateRows: unknown[][] = [];
    const memberRows: unknown[][] = [];
    const txnValues: unknown[] = [];
    // Last writer wins per key (multi-row upserts must not hit a key twice).
    const currentState = new Map<string, unknown[]>();
    const currentMembership = new Map<string, unknown[]>();
    const redactions: Array<[string, string, string]> = [];
    const roomRows: unknown[][] = [];
    const extremityRows: unknown[][] = [];
    const extremityRooms = new Set<string>();
    const extra = new Map<ExtraRows['write'], unknown[]>();
    const instance = this.instanceName;
    const makeCurrent = (roomId: string, e: EventToPersist['event'], pos: number): string | null => {
      const c = (e.content ?? {}) as Record<string, any>;
      const membership = e.type === 'm.room.member' && typeof c.membership === 'string' ? c.membership : null;
      currentState.set(roomId + '\n' + stateKey(e.type, e.state_key!), [roomId, e.type, e.state_key, e.event_id, pos, membership]);
      if (membership) currentMembership.set(roomId + '\n' + e.state_key!, [roomId, e.state_key, membership, e.event_id, pos]);
      return membership;
    };

    for (const batch of batches) {
      const { roomId } = batch;
      for (const x of batch.extraRows ?? []) {
        const rows = extra.get(x.write);
        if (rows) rows.push(...x.rows);
        else extra.set(x.write, [...x.rows]);
      }
      extremityRooms.add(roomId);
      for (const e of batch.forwardExtremities) extremityRows.push([roomId, e]);
      for (const p of batch.events) {
        const ev = p.event;
        const content = (ev.content ?? {}) as Record<string, any>;
        const rel = content['m.relates_to'];
        const relatesTo = rel && typeof rel === 'object' && typeof rel.event_id === 'string' ? rel.event_id : null;
        const relType = relatesTo && typeof rel.rel_type === 'string' ? rel.rel_type : null;
        const isState = typeof ev.state_key === 'string';
        const extraUnsigned = p.unsignedExtra;
        eventValues.push(
          p.streamOrdering, ev.event_id, roomId, ev.type, isState ? ev.state_key : null, ev.sender, ev.depth, ev.depth,
          ev.origin_server_ts, p.json ?? JSON.stringify(ev), 0, p.rejectedReason ?? null, 0,
          typeof content.url === 'string' ? 1 : 0, relatesTo, relType, instance, now,
          extraUnsigned && Object.keys(extraUnsigned).length ? JSON.stringify(extraUnsigned) : null,
          p.stateGroup, p.txn?.deviceId ?? null, p.txn?.txnId ?? null,
        );
        if (p.newStateGroup) {
          const g = p.newStateGroup;
          groupRows.push([g.id, roomId, ev.event_id, g.prevGroup, g.deltaDepth]);
          for (const [k, id] of g.entries) {
            const [type, sk] = splitStateKey(k);
            groupStateRows.push([g.id, roomId, type, sk, id]);
          }
        }
        if (p.txn) txnValues.push(p.txn.userId, p.txn.deviceId, p.txn.scope, p.txn.txnId, ev.event_id, now);
        if (p.createRoom) roomRows.push([roomId, p.createRoom.roomVersion, p.createRoom.creator, now]);
        if (p.rejectedReason) continue;
        if (p.redacts) redactions.push([p.redacts, ev.event_id, roomId]);
        if (p.currentStateFix) for (const fix of p.currentStateFix) makeCurrent(roomId, fix.event, fix.streamOrdering);
        if (isState) {
          const membership = makeCurrent(roomId, ev, p.streamOrdering);
          if (membership) {
            memberRows.push([ev.event_id, roomId, ev.state_key, ev.sender, membership, p.streamOrdering, strOrNull(content.displayname), strOrNull(content.avatar_url)]);
          }
        }
      }
    }

    // Writes only (SQLite: on the writer thread, the commit's fsync off the event loop).
    await writeTransaction(this.db, async (tx) => {
      if (roomRows.length) {
        await insertRows(tx, 'INSERT INTO rooms (room_id, room_version, creator, created_ts)', ROOM_TYPES, roomRows, 'ON CONFLICT (room_id) DO NOTHING');
      }
      await insertMany(
        tx,
        `INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth, topological_ordering,
          origin_server_ts, json, outlier, rejected_reason, soft_failed, contains_url, relates_to_id, rel_type,
          instance_name, received_ts, unsigned_extra, state_group, txn_device_id, txn_id)`,
        EVENT_TYPES,
        eventValues,
      );
      if (groupRows.length) {
        await insertRows(tx, 'INSERT INTO state_groups (id, room_id, event_id, prev_state_group, delta_depth)', STATE_GROUP_TYPES, groupRows);
      }
      if (groupStateRows.length) {
        await insertRows(tx, 'INSERT INTO state_groups_state (state_group, room_id, type, state_key, event_id)', STATE_GROUP_STATE_TYPES, groupStateRows);
      }
      if (currentState.size) {
        await insertRows(
          tx,
          'INSERT INTO current_state_events (room_id, type, state_key, event_id, stream_ordering, membership)',
          CURRENT_STATE_TYPES,
          [...currentState.values()],
          `ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id,
             stream_ordering = excluded.stream_ordering, membership = excluded.membership`,
        );
      }
      if (memberRows.length) {
        await insertRows(
          tx,
          'INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, stream_ordering, display_name, avatar_url)',
          MEMBERSHIP_TYPES,
          memberRows,
        );
      }
      if (currentMembership.size) {
        await insertRows(
          tx,
          'INSERT INTO current_membership (room_id, user_id, membership, event_id, stream_ordering)',
          CURRENT_MEMBERSHIP_TYPES,
          [...currentMembership.values()],
          `ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
             event_id = excluded.event_id, stream_ordering = excluded.stream_ordering, forgotten = 0`,
        );
      }
      await insertMany(tx, 'INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_id, inserted_ts)', TXN_TYPES, txnValues, 'ON CONFLICT DO NOTHING');
      for (const [target, by, roomId] of redactions) {
        await tx.execute('UPDATE events SET redacted_by = ? WHERE event_id = ? AND room_id = ? AND redacted_by IS NULL', [by, target, roomId]);
      }
      const rooms = [...extremityRooms];
      if (tx.engine === 'postgres') {
        // The same result as below in two statements on disjoint rows (DISJOINT_ROWS):
        // PostgreSQL may then send the whole transaction as one statement. Lists as
        // arrays, so that the text is the same whatever their lengths.
        await tx.execute(
          `${DISJOINT_ROWS} DELETE FROM event_forward_extremities WHERE room_id = ANY(?::text[])
             AND (room_id, event_id) NOT IN (${unnestRows(EXTREMITY_TYPES)})`,
          [rooms, extremityRows.map((r) => r[0]), extremityRows.map((r) => r[1])],
        );
        if (extremityRows.length) {
          await insertRows(tx, `${DISJOINT_ROWS} INSERT INTO event_forward_extremities (room_id, event_id)`, EXTREMITY_TYPES, extremityRows, 'ON CONFLICT DO NOTHING');
        }
      } else {
        for (const part of chunks(rooms, 500)) {
          await tx.execute(`DELETE FROM event_forward_extremities WHERE room_id IN (${placeholders(part.length)})`, part);
        }
        if (extremityRows.length) await insertRows(tx, 'INSERT INTO event_forward_extremities (room_id, event_id)', EXTREMITY_TYPES, extremityRows);
      }
      // Other capabilities' rows (push actions): committed with their events or not at all.
      for (const [write, rows] of extra) if (rows.length) await write(tx, rows);
    });
  }

  async maxStateGroupId(): Promise<number> {
    const r = await this.db.queryOne<{ m: number | null }>('SELECT MAX(id) AS m FROM state_groups');
    return Number(r?.m ?? 0);
  }

  // ------------------------------------------------------------------ events

  async getEvent(eventId: string): Promise<StoredEvent | undefined> {
    const r = await this.db.queryOne(`SELECT ${EVENT_COLS} FROM events WHERE event_id = ?`, [eventId]);
    return r ? eventFromRow(r) : undefined;
  }

  async getEvents(eventIds: readonly string[]): Promise<Map<string, StoredEvent>> {
    return eventsById(this.db, eventIds);
  }

  async getRoomEventsByStream(
    roomId: string,
    o: { from: number; to: number; limit: number; dir: 'f' | 'b'; filter?: EventQueryFilter },
  ): Promise<StoredEvent[]> {
    const params: unknown[] = [roomId, o.from, o.to];
    const f = eventFilterSql(o.filter, params);
    params.push(o.limit);
    const order = o.dir === 'f' ? 'ASC' : 'DESC';
    const rows = await this.db.query(
      `SELECT ${EVENT_COLS} FROM events WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ? AND ${TIMELINE}${f}
       ORDER BY stream_ordering ${order} LIMIT ?`,
      params,
    );
    return rows.map(eventFromRow);
  }

  async paginate(
    roomId: string,
    o: { from: TopoPosition | null; to?: TopoPosition | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter },
  ): Promise<StoredEvent[]> {
    const params: unknown[] = [roomId];
    let where = `room_id = ? AND ${TIMELINE}`;
    where += topoBoundsSql(o, params);
    where += eventFilterSql(o.filter, params);
    return topoOrderedEvents(this.db, where, params, o.dir, o.limit);
  }

  async paginateForViewer(
    roomId: string,
    o: { from: WalkBound | null; to?: WalkBound | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter },
    viewer: { userId: string; deviceId?: string | null },
  ): Promise<ViewerPage> {
    const q = viewerPageSql(roomId, o, viewer);
    return viewerPageFromRows(await this.db.query(q.sql, q.params));
  }

  async readAccessAndPage(
    roomId: string,
    o: { from: WalkBound | null; to?: WalkBound | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter },
    viewer: { userId: string; deviceId?: string | null },
  ): Promise<{ access: RoomReadAccess; page: ViewerPage }> {
    // One statement: the access rows (k 0-3) and the page's rows (k 4) in
    // the columns of both, the page's in its order.
    const q = viewerPageSql(roomId, o, viewer);
    const order = o.dir === 'b' ? 'DESC' : 'ASC';
    const rows = await this.db.query(
      `SELECT k, stream_ordering, event_id, NULL AS room_id, NULL AS topological_ordering, json, NULL AS outlier,
         NULL AS rejected_reason, NULL AS soft_failed, NULL AS redacted_by, NULL AS unsigned_extra, NULL AS txn_id, NULL AS related,
         membership, sender
       FROM (${READ_ACCESS_SQL}) a
       UNION ALL
       SELECT 4, stream_ordering, event_id, room_id, topological_ordering, json, outlier, rejected_reason, soft_failed, redacted_by,
         unsigned_extra, txn_id, related, NULL, NULL
       FROM (${q.sql}) p
       ORDER BY k, topological_ordering ${order}, stream_ordering ${order}`,
      [...readAccessParams(roomId, viewer.userId), ...q.params],
    );
    const split = rows.findIndex((r) => Number(r.k) === 4);
    const accessRows = split < 0 ? rows : rows.slice(0, split);
    accessRows.sort((x, y) => Number(x.stream_ordering) - Number(y.stream_ordering)); // each kind oldest first
    return {
      access: readAccessFromRows(roomId, viewer.userId, accessRows),
      page: viewerPageFromRows(split < 0 ? [] : rows.slice(split)),
    };
  }

  async topoPositionAtStream(roomId: string, stream: number): Promise<TopoPosition | null> {
    const r = await this.db.queryOne(
      `SELECT topological_ordering, stream_ordering FROM events WHERE room_id = ? AND stream_ordering <= ? AND outlier = 0
       ORDER BY stream_ordering DESC LIMIT 1`,
      [roomId, stream],
    );
    return r ? { topo: Number(r.topological_ordering), stream } : null;
  }

  async eventsAtTimestamp(roomId: string, ts: number, dir: 'f' | 'b', limit: number, after?: { ts: number; stream: number }) {
    // dir f: origin_server_ts >= ts, oldest first; dir b: <= ts, newest first.
    // `after` continues past the last event of the previous batch (keyset).
    const [cmp, order] = dir === 'f' ? ['>', 'ASC'] : ['<', 'DESC'];
    const params: unknown[] = [roomId, ts];
    let next = '';
    if (after) {
      next = ` AND (origin_server_ts ${cmp} ? OR (origin_server_ts = ? AND stream_ordering ${cmp} ?))`;
      params.push(after.ts, after.ts, after.stream);
    }
    params.push(limit);
    const rows = await this.db.query(
      `SELECT ${EVENT_COLS} FROM events WHERE room_id = ? AND origin_server_ts ${cmp}= ? AND ${TIMELINE}${next}
       ORDER BY origin_server_ts ${order}, stream_ordering ${order} LIMIT ?`,
      params,
    );
    return rows.map(eventFromRow);
  }

  async getForwardExtremities(roomId: string): Promise<string[]> {
    const rows = await this.db.query('SELECT event_id FROM event_forward_extremities WHERE room_id = ?', [roomId]);
    return rows.map((r) => r.event_id);
  }

  async maxStreamOrdering(): Promise<number> {
    const r = await this.db.queryOne<{ m: number | null }>('SELECT MAX(stream_ordering) AS m FROM events');
    return Number(r?.m ?? 0);
  }

  // ------------------------------------------------------------------- state

  async getStateGroups(eventIds: readonly string[]): Promise<Map<string, number>> {
    return stateGroupsOfEvents(this.db, eventIds);
  }

  async getStateGroupInfo(group: number) {
    const r = await this.db.queryOne('SELECT prev_state_group, delta_depth FROM state_groups WHERE id = ?', [group]);
    if (!r) return undefined;
    return { prevGroup: r.prev_state_group == null ? null : Number(r.prev_state_group), deltaDepth: Number(r.delta_depth) };
  }

  async getStateIdsForGroup(group: number): Promise<StateIds> {
    // Walk the delta chain in one recursive query; nearer groups win.
    const rows = await this.db.query(
      `WITH RECURSIVE chain(id, prev, lvl) AS (
         SELECT id, prev_state_group, 0 FROM state_groups WHERE id = ?
         UNION ALL
         SELECT g.id, g.prev_state_group, c.lvl + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
       )
       SELECT s.type, s.state_key, s.event_id, c.lvl FROM chain c JOIN state_groups_state s ON s.state_group = c.id
       ORDER BY c.lvl DESC`,
      [group],
    );
    const out: StateIds = new Map();
    for (const r of rows) out.set(stateKey(r.type, r.state_key), r.event_id);
    return out;
  }

  async getCurrentStateIds(roomId: string): Promise<StateIds> {
    const rows = await this.db.query('SELECT type, state_key, event_id FROM current_state_events WHERE room_id = ?', [roomId]);
    const out: StateIds = new Map();
    for (const r of rows) out.set(stateKey(r.type, r.state_key), r.event_id);
    return out;
  }

  async getCurrentStateEvents(roomId: string, types?: string[]): Promise<StoredEvent[]> {
    const params: unknown[] = [roomId];
    let cond = '';
    if (types) {
      if (!types.length) return [];
      cond = ` AND c.type IN (${placeholders(types.length)})`;
      params.push(...types);
    }
    const rows = await this.db.query(
      `SELECT ${EVENT_COLS.split(', ').map((c) => 'e.' + c).join(', ')} FROM current_state_events c
       JOIN events e ON e.event_id = c.event_id WHERE c.room_id = ?${cond} ORDER BY e.stream_ordering`,
      params,
    );
    return rows.map(eventFromRow);
  }

  async getCurrentStateEvent(roomId: string, type: string, sk: string): Promise<StoredEvent | undefined> {
    const r = await this.db.queryOne(
      `SELECT ${EVENT_COLS.split(', ').map((c) => 'e.' + c).join(', ')} FROM current_state_events c
       JOIN events e ON e.event_id = c.event_id WHERE c.room_id = ? AND c.type = ? AND c.state_key = ?`,
      [roomId, type, sk],
    );
    return r ? eventFromRow(r) : undefined;
  }

  async stateHistory(roomId: string, type: string, sk: string) {
    const rows = await this.db.query(
      `SELECT stream_ordering, event_id, json FROM events WHERE room_id = ? AND type = ? AND state_key = ? AND ${TIMELINE}
       ORDER BY stream_ordering`,
      [roomId, type, sk],
    );
    return rows.map((r) => ({ streamOrdering: Number(r.stream_ordering), eventId: r.event_id as string, content: JSON.parse(r.json).content ?? {} }));
  }

  // ------------------------------------------------------- rooms, membership

  async getRoom(roomId: string): Promise<RoomRow | undefined> {
    const r = await this.db.queryOne('SELECT room_id, room_version, creator, is_public, created_ts FROM rooms WHERE room_id = ?', [roomId]);
    if (!r) return undefined;
    return { roomId: r.room_id, roomVersion: r.room_version, creator: r.creator, isPublic: !!Number(r.is_public), createdTs: Number(r.created_ts) };
  }

  async getMembership(roomId: string, userId: string): Promise<MemberRow | undefined> {
    const r = await this.db.queryOne(
      'SELECT room_id, user_id, membership, event_id, stream_ordering FROM current_membership WHERE room_id = ? AND user_id = ?',
      [roomId, userId],
    );
    return r ? toMember(r) : undefined;
  }

  async getMembers(roomId: string, opts: { membership?: Membership[]; notMembership?: Membership[] } = {}): Promise<MemberRow[]> {
    const params: unknown[] = [roomId];
    let cond = '';
    if (opts.membership) {
      if (!opts.membership.length) return [];
      cond += ` AND membership IN (${placeholders(opts.membership.length)})`;
      params.push(...opts.membership);
    }
    if (opts.notMembership?.length) {
      cond += ` AND membership NOT IN (${placeholders(opts.notMembership.length)})`;
      params.push(...opts.notMembership);
    }
    const rows = await this.db.query(
      `SELECT room_id, user_id, membership, event_id, stream_ordering FROM current_membership WHERE room_id = ?${cond} ORDER BY user_id`,
      params,
    );
    return rows.map(toMember);
  }

  async getRoomsForUser(userId: string, memberships: Membership[]): Promise<MemberRow[]> {
    if (!memberships.length) return [];
    const rows = await this.db.query(
      `SELECT room_id, user_id, membership, event_id, stream_ordering FROM current_membership
       WHERE user_id = ? AND forgotten = 0 AND membership IN (${placeholders(memberships.length)}) ORDER BY stream_ordering`,
      [userId, ...memberships],
    );
    return rows.map(toMember);
  }

  async joinedCounts(roomIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const part of chunks([...new Set(roomIds)], 500)) {
      const rows = await this.db.query(
        `SELECT room_id, COUNT(*) AS n FROM current_membership WHERE membership = 'join' AND room_id IN (${placeholders(part.length)})
         GROUP BY room_id`,
        part,
      );
      for (const r of rows) out.set(r.room_id, Number(r.n));
    }
    return out;
  }

  async readAccess(roomId: string, userId: string): Promise<RoomReadAccess> {
    const rows = await this.db.query(`${READ_ACCESS_SQL} ORDER BY k, stream_ordering`, readAccessParams(roomId, userId));
    return readAccessFromRows(roomId, userId, rows);
  }

  async membershipHistory(roomId: string, userId: string): Promise<MembershipChange[]> {
    const rows = await this.db.query(
      `SELECT event_id, room_id, user_id, sender, membership, stream_ordering FROM room_memberships
       WHERE room_id = ? AND user_id = ? ORDER BY stream_ordering`,
      [roomId, userId],
    );
    return rows.map((r) => ({ ...toMember(r), sender: r.sender }));
  }

  async membershipChangesForUser(userId: string, from: number, to: number): Promise<MembershipChange[]> {
    const rows = await this.db.query(
      `SELECT event_id, room_id, user_id, sender, membership, stream_ordering FROM room_memberships
       WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering`,
      [userId, from, to],
    );
    return rows.map((r) => ({ ...toMember(r), sender: r.sender }));
  }

  async forgetRoom(userId: string, roomId: string): Promise<void> {
    await this.db.execute('UPDATE current_membership SET forgotten = 1 WHERE user_id = ? AND room_id = ?', [userId, roomId]);
  }

  async isForgotten(userId: string, roomId: string): Promise<boolean> {
    const r = await this.db.queryOne('SELECT forgotten FROM current_membership WHERE user_id = ? AND room_id = ?', [userId, roomId]);
    return !!r && !!Number(r.forgotten);
  }

  // ---------------------------------------------------------- transaction ids

  /**
   * The lookups asked in one turn of the event loop (the sends of a burst of
   * requests) are one statement. On PostgreSQL a round trip costs far more
   * than the rows. On SQLite (no round trip) the statement's own costs are
   * paid once per turn instead of once per send: binding, starting a read
   * transaction, and, after each commit of the writer thread (which empties
   * the main connection's page cache), reading the index's pages again.
   */
  async getTxnEvent(userId: string, deviceId: string, scope: string, txnId: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.txnLookups) {
        this.txnLookups = [];
        setImmediate(() => this.flushTxnLookups());
      }
      this.txnLookups.push({ userId, deviceId, scope, txnId, resolve, reject });
    });
  }

  private txnLookups: TxnLookup[] | undefined;

  private flushTxnLookups(): void {
    const all = this.txnLookups ?? [];
    this.txnLookups = undefined;
    // A key with a NUL is looked up alone: PostgreSQL refuses the text (a bad
    // input that fails its own lookup only), and the answers below are matched
    // to their keys by the four parts joined with NULs.
    const alone = (x: TxnLookup) => x.userId.includes('\0') || x.deviceId.includes('\0') || x.scope.includes('\0') || x.txnId.includes('\0');
    const batched: TxnLookup[] = [];
    for (const x of all) {
      if (alone(x)) this.getTxnEventNow(x.userId, x.deviceId, x.scope, x.txnId).then(x.resolve, x.reject);
      else batched.push(x);
    }
    const sqlite = this.db.engine === 'sqlite';
    for (const part of chunks(batched, sqlite ? SQLITE_TXN_LOOKUP_MAX : 500)) {
      if (part.length === 1) {
        const one = part[0]!;
        this.getTxnEventNow(one.userId, one.deviceId, one.scope, one.txnId).then(one.resolve, one.reject);
        continue;
      }
      let rows: Promise<Row[]>;
      if (sqlite) {
        let n = 2;
        while (n < part.length) n *= 2;
        const params: string[] = [];
        for (let i = 0; i < n; i++) {
          const x = part[Math.min(i, part.length - 1)]!;
          params.push(x.userId, x.deviceId, x.scope, x.txnId);
        }
        rows = this.db.query(sqliteTxnLookupSql(n), params);
      } else {
        rows = this.db.query(TXN_LOOKUP_BATCH_SQL, [part.map((x) => x.userId), part.map((x) => x.deviceId), part.map((x) => x.scope), part.map((x) => x.txnId)]);
      }
      rows.then(
        (got) => {
          const found = new Map(
            got.filter((r) => r.event_id != null).map((r) => [`${r.user_id}\u0000${r.device_id}\u0000${r.scope}\u0000${r.txn_id}`, r.event_id as string]),
          );
          for (const x of part) x.resolve(found.get(`${x.userId}\u0000${x.deviceId}\u0000${x.scope}\u0000${x.txnId}`));
        },
        (e: unknown) => {
          for (const x of part) x.reject(e);
        },
      );
    }
  }

  private async getTxnEventNow(userId: string, deviceId: string, scope: string, txnId: string): Promise<string | undefined> {
    const r = await this.db.queryOne('SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ? AND scope = ? AND txn_id = ?', [
      userId,
      deviceId,
      scope,
      txnId,
    ]);
    return r?.event_id;
  }

  async getTxnIds(eventIds: readonly string[], userId: string, deviceId: string): Promise<Map<string, string>> {
    return txnIdsOfEvents(this.db, eventIds, userId, deviceId);
  }

  // ------------------------------------------------------ aliases, directory

  async createAlias(alias: string, roomId: string, creator: string): Promise<boolean> {
    const n = await this.db.execute(
      'INSERT INTO room_aliases (room_alias, room_id, creator, created_ts) VALUES (?, ?, ?, ?) ON CONFLICT (room_alias) DO NOTHING',
      [alias, roomId, creator, Date.now()],
    );
    return n > 0;
  }

  async getAlias(alias: string) {
    const r = await this.db.queryOne('SELECT room_id, creator FROM room_aliases WHERE room_alias = ?', [alias]);
    return r ? { roomId: r.room_id as string, creator: r.creator as string } : undefined;
  }

  async deleteAlias(alias: string): Promise<boolean> {
    return (await this.db.execute('DELETE FROM room_aliases WHERE room_alias = ?', [alias])) > 0;
  }

  async getAliasesForRoom(roomId: string): Promise<string[]> {
    const rows = await this.db.query('SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY created_ts, room_alias', [roomId]);
    return rows.map((r) => r.room_alias);
  }

  async setRoomPublic(roomId: string, isPublic: boolean): Promise<void> {
    await this.db.execute('UPDATE rooms SET is_public = ? WHERE room_id = ?', [isPublic ? 1 : 0, roomId]);
  }

  async listPublicRooms(o: { offset: number; limit: number; roomIds?: string[] }): Promise<PublicRoomRow[]> {
    const params: unknown[] = [];
    let cond = '';
    if (o.roomIds) {
      if (!o.roomIds.length) return [];
      cond = ` AND r.room_id IN (${placeholders(o.roomIds.length)})`;
      params.push(...o.roomIds);
    }
    params.push(o.limit, o.offset);
    const rows = await this.db.query(
      `SELECT r.room_id, (SELECT COUNT(*) FROM current_membership m WHERE m.room_id = r.room_id AND m.membership = 'join') AS n
       FROM rooms r WHERE r.is_public = 1${cond} ORDER BY n DESC, r.room_id LIMIT ? OFFSET ?`,
      params,
    );
    return rows.map((r) => ({ roomId: r.room_id, joinedMembers: Number(r.n) }));
  }

  async countPublicRooms(): Promise<number> {
    const r = await this.db.queryOne('SELECT COUNT(*) AS n FROM rooms WHERE is_public = 1');
    return Number(r?.n ?? 0);
  }
}
