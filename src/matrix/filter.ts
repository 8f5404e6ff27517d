/**
 * Filters (client-server API: "Filtering"): validation of uploaded filter
 * definitions against the spec's Filter schema. Pure code: the sync
 * capability applies filters; this module checks and normalises them.
 *
 * Wrong JSON types answer M_BAD_JSON; well-typed but unacceptable values
 * (a limit below 1, an unknown event_format, malformed room ids) answer
 * M_INVALID_PARAM.
 */
import { Errors } from '../util/errors.js';

export interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

export interface RoomEventFilter extends EventFilter {
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  unread_thread_notifications?: boolean;
}

export interface RoomFilter {
  rooms?: string[];
  not_rooms?: string[];
  include_leave?: boolean;
  state?: RoomEventFilter;
  timeline?: RoomEventFilter;
  ephemeral?: RoomEventFilter;
  account_data?: RoomEventFilter;
}

export interface Filter {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: RoomFilter;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(o: Obj, key: string, path: string, check?: (s: string) => boolean, what?: string): void {
  const v = o[key];
  if (v === undefined) return;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw Errors.badJson(`${path}${key} must be a list of strings`);
  if (check) for (const s of v as string[]) if (!check(s)) throw Errors.invalidParam(`${path}${key}: ${JSON.stringify(s)} is not ${what}`);
}

function bool(o: Obj, key: string, path: string): void {
  const v = o[key];
  if (v !== undefined && typeof v !== 'boolean') throw Errors.badJson(`${path}${key} must be a boolean`);
}

const isRoomId = (s: string) => /^!.+:.+$/.test(s) || /^![A-Za-z0-9+/_-]{43}$/.test(s);
const isUserId = (s: string) => /^@[^:]*:.+$/.test(s);

function validateEventFilter(v: unknown, path: string, room: boolean): void {
  if (v === undefined) return;
  if (!isObject(v)) throw Errors.badJson(`${path} must be an object`);
  if (v.limit !== undefined) {
    if (typeof v.limit !== 'number' || !Number.isInteger(v.limit)) throw Errors.badJson(`${path}.limit must be an integer`);
    if (v.limit < 1) throw Errors.invalidParam(`${path}.limit must be at least 1`);
  }
  stringList(v, 'types', `${path}.`);
  stringList(v, 'not_types', `${path}.`);
  stringList(v, 'senders', `${path}.`, isUserId, 'a user id');
  stringList(v, 'not_senders', `${path}.`, isUserId, 'a user id');
  if (room) {
    stringList(v, 'rooms', `${path}.`, isRoomId, 'a room id');
    stringList(v, 'not_rooms', `${path}.`, isRoomId, 'a room id');
    for (const k of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications']) bool(v, k, `${path}.`);
  }
}

/** Checks a filter definition; returns it typed (unknown keys are kept, as the spec allows extensions). */
export function validateFilter(v: unknown): Filter {
  if (!isObject(v)) throw Errors.badJson('filter must be an object');
  stringList(v, 'event_fields', '');
  if (v.event_fields !== undefined) {
    for (const f of v.event_fields as string[]) if (f.length === 0) throw Errors.invalidParam('event_fields entries must not be empty');
  }
  if (v.event_format !== undefined) {
    if (typeof v.event_format !== 'string') throw Errors.badJson('event_format must be a string');
    if (v.event_format !== 'client' && v.event_format !== 'federation') throw Errors.invalidParam("event_format must be 'client' or 'federation'");
  }
  validateEventFilter(v.presence, 'presence', false);
  validateEventFilter(v.account_data, 'account_data', false);
  if (v.room !== undefined) {
    const room = v.room;
    if (!isObject(room)) throw Errors.badJson('room must be an object');
    stringList(room, 'rooms', 'room.', isRoomId, 'a room id');
    stringList(room, 'not_rooms', 'room.', isRoomId, 'a room id');
    bool(room, 'include_leave', 'room.');
    for (const k of ['state', 'timeline', 'ephemeral', 'account_data']) validateEventFilter(room[k], `room.${k}`, true);
  }
  return v as Filter;
}

/**
 * The JSON text of a `filter` query parameter, parsed. The spec names no
 * error code for one that does not parse; it answers M_BAD_JSON, like a
 * filter of the wrong shape (M_NOT_JSON is for request bodies).
 */
export function decodeFilterJson(param: string): unknown {
  try {
    return JSON.parse(param);
  } catch {
    throw Errors.badJson('filter is not valid JSON');
  }
}

/**
 * A filter given inline to /sync (`filter=` query parameter): JSON starting
 * with `{`, otherwise a filter id. Returns the checked filter, or the id to
 * look up. (/messages and /context take only JSON: services/rooms/pagination.ts
 * decodes it with decodeFilterJson.)
 */
export function parseFilterParam(param: string): { filter: Filter } | { filterId: string } {
  if (param.trimStart().startsWith('{')) return { filter: validateFilter(decodeFilterJson(param)) };
  return { filterId: param };
}
