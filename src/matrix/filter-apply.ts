/**
 * Applying filters (client-server API "Filtering") to events. Pure: no I/O.
 * Validation and storage of filters belong to filter.ts (accounts); this
 * module only needs a filter object that has the right shape, and offers
 * `asSyncFilter` to check the shape of an inline filter.
 *
 * Semantics (spec, EventFilter / RoomEventFilter):
 * - absent lists mean "everything"; `not_*` wins over the positive list;
 * - `types`/`not_types` accept `*` matching any sequence of characters;
 * - `contains_url: true` keeps only events whose content has a `url` key,
 *   `false` drops them;
 * - `rooms`/`not_rooms` exist on the room filter (every section) and on
 *   each RoomEventFilter.
 */
import { Errors } from '../util/errors.js';
import type { EventFilter, Filter, RoomEventFilter } from './filter.js';

/** The filter definition types live with their validation in filter.ts. */
export type { EventFilter, RoomEventFilter, RoomFilter } from './filter.js';
/** A filter definition as /sync applies it. */
export type SyncFilter = Filter;

/** The event properties filters look at. */
export interface FilterableEvent {
  type: string;
  sender?: string;
  room_id?: string;
  content?: Record<string, unknown>;
}

/** `*` matches any sequence of characters; everything else literally. */
export function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  const re = new RegExp('^' + pattern.split('*').map(escapeRegExp).join('.*') + '$', 's');
  return re.test(type);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a room passes a list pair (rooms / not_rooms). */
export function roomAllowed(f: { rooms?: string[]; not_rooms?: string[] } | undefined, roomId: string): boolean {
  if (!f) return true;
  if (f.not_rooms?.includes(roomId)) return false;
  if (f.rooms && !f.rooms.includes(roomId)) return false;
  return true;
}

/** Whether one event passes an EventFilter or RoomEventFilter (ignores `limit`). */
export function eventMatches(f: RoomEventFilter | EventFilter | undefined, ev: FilterableEvent): boolean {
  if (!f) return true;
  if (f.not_types?.some((p) => typeMatches(p, ev.type))) return false;
  if (f.types && !f.types.some((p) => typeMatches(p, ev.type))) return false;
  if (ev.sender !== undefined) {
    if (f.not_senders?.includes(ev.sender)) return false;
    if (f.senders && !f.senders.includes(ev.sender)) return false;
  } else if (f.senders) {
    return false;
  }
  const rf = f as RoomEventFilter;
  if (ev.room_id !== undefined && !roomAllowed(rf, ev.room_id)) return false;
  if (rf.contains_url !== undefined) {
    const has = ev.content !== undefined && typeof ev.content === 'object' && ev.content !== null && 'url' in ev.content;
    if (has !== rf.contains_url) return false;
  }
  return true;
}

/** Filters a list and keeps the LAST `limit` matching events (timelines keep the newest). */
export function applyEventFilter<T extends FilterableEvent>(f: RoomEventFilter | EventFilter | undefined, events: T[], defaultLimit?: number): T[] {
  const kept = f ? events.filter((e) => eventMatches(f, e)) : events.slice();
  const limit = f?.limit ?? defaultLimit;
  return limit !== undefined && kept.length > limit ? kept.slice(kept.length - limit) : kept;
}

/**
 * `event_fields`: keep only the listed fields. Each entry is a dot-separated
 * path into the event; `\.` escapes a literal dot.
 */
export function projectEventFields<T extends Record<string, any>>(ev: T, fields: string[] | undefined): Partial<T> {
  if (!fields) return ev;
  const out: Record<string, any> = {};
  for (const field of fields) {
    const path = splitFieldPath(field);
    let src: any = ev;
    for (const p of path) {
      if (src === null || typeof src !== 'object' || !(p in src)) {
        src = undefined;
        break;
      }
      src = src[p];
    }
    if (src === undefined) continue;
    let dst = out;
    path.forEach((p, i) => {
      if (i === path.length - 1) dst[p] = src;
      else dst = dst[p] = typeof dst[p] === 'object' && dst[p] !== null ? dst[p] : {};
    });
  }
  return out as Partial<T>;
}

function splitFieldPath(field: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if (c === '\\' && field[i + 1] === '.') {
      cur += '.';
      i++;
    } else if (c === '.') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

// ---- shape checking of inline filters (M_BAD_JSON) ----

function checkStringList(o: Record<string, unknown>, key: string, where: string): void {
  const v = o[key];
  if (v === undefined) return;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw Errors.badJson(`${where}.${key} must be a list of strings`);
}

function checkEventFilter(v: unknown, where: string, room: boolean): void {
  if (v === undefined) return;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw Errors.badJson(`${where} must be an object`);
  const o = v as Record<string, unknown>;
  for (const k of ['types', 'not_types', 'senders', 'not_senders']) checkStringList(o, k, where);
  if (o.limit !== undefined && (typeof o.limit !== 'number' || !Number.isInteger(o.limit) || o.limit < 0)) {
    throw Errors.badJson(`${where}.limit must be a non-negative integer`);
  }
  if (room) {
    checkStringList(o, 'rooms', where);
    checkStringList(o, 'not_rooms', where);
    for (const k of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications']) {
      if (o[k] !== undefined && typeof o[k] !== 'boolean') throw Errors.badJson(`${where}.${k} must be a boolean`);
    }
  }
}

/** Checks the shape of a filter definition; throws M_BAD_JSON when it is wrong. */
export function asSyncFilter(v: unknown): SyncFilter {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw Errors.badJson('filter must be a JSON object');
  const f = v as Record<string, unknown>;
  checkStringList(f, 'event_fields', 'filter');
  if (f.event_format !== undefined && f.event_format !== 'client' && f.event_format !== 'federation') {
    throw Errors.badJson("filter.event_format must be 'client' or 'federation'");
  }
  checkEventFilter(f.presence, 'filter.presence', false);
  checkEventFilter(f.account_data, 'filter.account_data', false);
  if (f.room !== undefined) {
    if (f.room === null || typeof f.room !== 'object' || Array.isArray(f.room)) throw Errors.badJson('filter.room must be an object');
    const r = f.room as Record<string, unknown>;
    checkStringList(r, 'rooms', 'filter.room');
    checkStringList(r, 'not_rooms', 'filter.room');
    if (r.include_leave !== undefined && typeof r.include_leave !== 'boolean') throw Errors.badJson('filter.room.include_leave must be a boolean');
    for (const k of ['timeline', 'state', 'ephemeral', 'account_data']) checkEventFilter(r[k], `filter.room.${k}`, true);
  }
  return f as SyncFilter;
}
