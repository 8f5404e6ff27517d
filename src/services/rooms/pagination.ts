/**
 * Pagination tokens for /messages and /context, and the RoomEventFilter.
 *
 * A topological token `t<topo>-<stream>` names the position just after the
 * event at (topological_ordering, stream_ordering). Sync tokens
 * (`s1_...`, streams/tokens.ts) are accepted too: their events position N
 * maps to the position after the newest room event with stream_ordering <= N.
 */
import { decodeFilterJson } from '../../matrix/filter.js';
import { decodeSyncToken, eventsUpperBound, type EventsPosition } from '../../streams/tokens.js';
import type { EventQueryFilter, TopoPosition } from '../../storage/rooms/store.js';
import { Errors } from '../../util/errors.js';

/** `stream`: the highest position a sync token covers; `events`: its events part, per writer (for a room: its writer's position). */
export type PaginationToken = { kind: 'topo'; pos: TopoPosition } | { kind: 'stream'; stream: number; events: EventsPosition };

export function parsePaginationToken(token: string): PaginationToken {
  const m = /^t(\d{1,16})-(\d{1,16})$/.exec(token);
  if (m) return { kind: 'topo', pos: { topo: Number(m[1]), stream: Number(m[2]) } };
  if (token.startsWith('s')) {
    const t = decodeSyncToken(token); // throws M_INVALID_PARAM
    return { kind: 'stream', stream: eventsUpperBound(t.events), events: t.events };
  }
  throw Errors.invalidParam('Invalid pagination token');
}

export function formatTopoToken(p: TopoPosition): string {
  return `t${p.topo}-${p.stream}`;
}

/** Client RoomEventFilter (the parts that apply to room timelines). */
export interface RoomEventFilter extends EventQueryFilter {
  limit?: number;
  lazyLoadMembers?: boolean;
  includeRedundantMembers?: boolean;
  rooms?: string[];
  notRooms?: string[];
}

function stringList(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw Errors.badJson(`filter: '${name}' must be a list of strings`);
  return v as string[];
}

/** Parses a RoomEventFilter object (from JSON), throwing M_BAD_JSON when malformed. */
export function parseRoomEventFilter(raw: unknown): RoomEventFilter {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw Errors.badJson('filter must be an object');
  const o = raw as Record<string, unknown>;
  const f: RoomEventFilter = {};
  const types = stringList(o.types, 'types');
  const notTypes = stringList(o.not_types, 'not_types');
  const senders = stringList(o.senders, 'senders');
  const notSenders = stringList(o.not_senders, 'not_senders');
  const rooms = stringList(o.rooms, 'rooms');
  const notRooms = stringList(o.not_rooms, 'not_rooms');
  if (types) f.types = types;
  if (notTypes) f.notTypes = notTypes;
  if (senders) f.senders = senders;
  if (notSenders) f.notSenders = notSenders;
  if (rooms) f.rooms = rooms;
  if (notRooms) f.notRooms = notRooms;
  if (o.contains_url !== undefined) {
    if (typeof o.contains_url !== 'boolean') throw Errors.badJson("filter: 'contains_url' must be a boolean");
    f.containsUrl = o.contains_url;
  }
  if (o.limit !== undefined) {
    if (typeof o.limit !== 'number' || !Number.isInteger(o.limit) || o.limit < 0) throw Errors.badJson("filter: 'limit' must be a non-negative integer");
    f.limit = o.limit;
  }
  if (o.lazy_load_members !== undefined) f.lazyLoadMembers = o.lazy_load_members === true;
  if (o.include_redundant_members !== undefined) f.includeRedundantMembers = o.include_redundant_members === true;
  return f;
}

/** Parses the `filter` query parameter (JSON-encoded RoomEventFilter); M_BAD_JSON when it is not one. */
export function parseFilterParam(value: string | undefined): RoomEventFilter {
  if (value === undefined || value === '') return {};
  return parseRoomEventFilter(decodeFilterJson(value));
}
