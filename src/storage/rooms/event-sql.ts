/**
 * SQL shared by every reader of the rooms capability's `events` table
 * (migrations/rooms.ts): the room store, the sync store and the rooms-extra
 * store select the same columns, decode rows the same way and translate
 * event filters and topological bounds to the same conditions.
 */
import { chunks, placeholders, type Queryable, type Row } from '../db.js';
import type { EventQueryFilter, StoredEvent, TopoPosition } from './store.js';

/** The columns `eventFromRow` decodes. */
export const EVENT_COLS =
  'stream_ordering, event_id, room_id, topological_ordering, json, outlier, rejected_reason, soft_failed, redacted_by, unsigned_extra';

/** Events that belong in a room's timeline. */
export const TIMELINE = 'outlier = 0 AND rejected_reason IS NULL AND soft_failed = 0';

/** Decodes a row selected with `EVENT_COLS`. */
export function eventFromRow(r: Row): StoredEvent {
  return {
    event: JSON.parse(r.json),
    roomId: r.room_id,
    streamOrdering: Number(r.stream_ordering),
    topologicalOrdering: Number(r.topological_ordering),
    outlier: !!Number(r.outlier),
    rejectedReason: r.rejected_reason ?? null,
    softFailed: !!Number(r.soft_failed),
    redactedBy: r.redacted_by ?? null,
    unsignedExtra: r.unsigned_extra ? JSON.parse(r.unsigned_extra) : null,
  };
}

/** An event filter as SQL sees it. */
export interface EventFilterSql extends EventQueryFilter {
  /** Ignored users: their non-state events are hidden. */
  ignoredSenders?: string[];
}

/** `*` wildcards of filter type/sender lists as LIKE patterns (escape char `\`). */
export function likePattern(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c).replace(/\*/g, '%');
}

/**
 * SQL conditions for a filter, each starting with ` AND ` (empty when there is
 * no filter); pushes their parameters onto `params` in order.
 */
export function eventFilterSql(f: EventFilterSql | undefined, params: unknown[]): string {
  if (!f) return '';
  let sql = '';
  const match = (col: string, values: string[], negate: boolean): string => {
    const parts = values.map((v) => {
      if (v.includes('*')) {
        params.push(likePattern(v));
        return `${col} LIKE ? ESCAPE '\\'`;
      }
      params.push(v);
      return `${col} = ?`;
    });
    return negate ? ` AND NOT (${parts.join(' OR ')})` : ` AND (${parts.join(' OR ')})`;
  };
  if (f.types) sql += f.types.length ? match('type', f.types, false) : ' AND 1 = 0';
  if (f.notTypes?.length) sql += match('type', f.notTypes, true);
  if (f.senders) sql += f.senders.length ? match('sender', f.senders, false) : ' AND 1 = 0';
  if (f.notSenders?.length) sql += match('sender', f.notSenders, true);
  if (f.containsUrl !== undefined) sql += ` AND contains_url = ${f.containsUrl ? 1 : 0}`;
  if (f.ignoredSenders?.length) {
    sql += ` AND (state_key IS NOT NULL OR sender NOT IN (${placeholders(f.ignoredSenders.length)}))`;
    params.push(...f.ignoredSenders);
  }
  return sql;
}

/**
 * A bound of a topological walk given by a stream position (a sync token's):
 * the position just after the room's newest event at or before it, as
 * `RoomStore.topoPositionAtStream` gives it, resolved within the statement.
 */
export interface StreamBound {
  roomId: string;
  stream: number;
}

export type WalkBound = TopoPosition | StreamBound;

/**
 * Conditions (each starting with ` AND `) bounding a topological walk:
 * dir 'b' keeps events at or before `from` and after `to`; dir 'f' keeps
 * events after `from` and at or before `to`. Written as row-value
 * comparisons, `(topo, stream) <= (?, ?)`, which both engines accept and
 * answer with a range of the (room_id, topological_ordering,
 * stream_ordering) index, ordered: a page deep in a long history reads its
 * rows only, where the spelled-out OR made PostgreSQL gather every event on
 * one side of the bound and sort them.
 */
export function topoBoundsSql(o: { dir: 'f' | 'b'; from?: WalkBound | null; to?: WalkBound | null }, params: unknown[]): string {
  const value = (p: WalkBound) => {
    if ('topo' in p) {
      params.push(p.topo, p.stream);
      return '(?, ?)';
    }
    // What `topoPositionAtStream` answers, as part of the statement.
    params.push(p.roomId, p.stream, p.stream);
    return `(COALESCE((SELECT topological_ordering FROM events WHERE room_id = ? AND stream_ordering <= ? AND outlier = 0
      ORDER BY stream_ordering DESC LIMIT 1), 0), ?)`;
  };
  const atOrBefore = (p: WalkBound) => ` AND (topological_ordering, stream_ordering) <= ${value(p)}`;
  const after = (p: WalkBound) => ` AND (topological_ordering, stream_ordering) > ${value(p)}`;
  let sql = '';
  if (o.dir === 'b') {
    if (o.from) sql += atOrBefore(o.from);
    if (o.to) sql += after(o.to);
  } else {
    if (o.from) sql += after(o.from);
    if (o.to) sql += atOrBefore(o.to);
  }
  return sql;
}

/**
 * Events matching `where` (with its `params`), walked in topological order:
 * dir 'b' newest first, dir 'f' oldest first; at most `limit`.
 */
export async function topoOrderedEvents(q: Queryable, where: string, params: unknown[], dir: 'f' | 'b', limit: number): Promise<StoredEvent[]> {
  const order = dir === 'b' ? 'DESC' : 'ASC';
  const rows = await q.query(
    `SELECT ${EVENT_COLS} FROM events WHERE ${where} ORDER BY topological_ordering ${order}, stream_ordering ${order} LIMIT ?`,
    [...params, limit],
  );
  return rows.map(eventFromRow);
}

// Batched reads by event id (chunks of 500 ids, duplicates asked once), shared by the stores.

/** Events by id; unknown ids are absent. */
export async function eventsById(q: Queryable, eventIds: readonly string[]): Promise<Map<string, StoredEvent>> {
  const out = new Map<string, StoredEvent>();
  for (const part of chunks([...new Set(eventIds)], 500)) {
    const rows = await q.query(`SELECT ${EVENT_COLS} FROM events WHERE event_id IN (${placeholders(part.length)})`, part);
    for (const r of rows) out.set(r.event_id, eventFromRow(r));
  }
  return out;
}

/** State group holding the state after each event. */
export async function stateGroupsOfEvents(q: Queryable, eventIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const part of chunks([...new Set(eventIds)], 500)) {
    const rows = await q.query(
      `SELECT event_id, state_group FROM events WHERE event_id IN (${placeholders(part.length)}) AND state_group IS NOT NULL`,
      part,
    );
    for (const r of rows) out.set(r.event_id, Number(r.state_group));
  }
  return out;
}

/** Transaction ids of the given events, for those sent by this user's device. */
export async function txnIdsOfEvents(q: Queryable, eventIds: readonly string[], userId: string, deviceId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const part of chunks([...new Set(eventIds)], 500)) {
    const rows = await q.query(
      `SELECT event_id, txn_id FROM events WHERE event_id IN (${placeholders(part.length)}) AND sender = ? AND txn_device_id = ?`,
      [...part, userId, deviceId],
    );
    for (const r of rows) out.set(r.event_id, r.txn_id);
  }
  return out;
}
