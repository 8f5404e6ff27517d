/**
 * POST /search, category room_events (client-server API "Server Side
 * Search").
 *
 * Index: event_search (SQLite FTS5 / PostgreSQL tsvector + GIN). It is filled
 * lazily: before each search the service indexes every searchable event
 * (m.room.message body, m.room.name, m.room.topic) up to the events stream's
 * position, then queries. So the rooms persist path needs no hook, and any
 * process can run a search (the index position moves by compare-and-set, so
 * two indexers never double rows). With several event persisters both the
 * index and the query go writer by writer, like /sync and /messages: a room
 * is searched up to its own persister's position, so one slow persister
 * hides nothing of the other's rooms.
 *
 * Only rooms the user is or was in are searched (joined, left, banned), and
 * every hit passes the history-visibility check before it is returned;
 * redacted events are dropped. Pagination tokens: `r<offset>` (rank) or
 * `s<stream position>` (recent: the next page is below that position, in
 * every room, whatever each persister's position; a slow persister's rows
 * that land below it later show up on a later page, never get skipped).
 */
import { stateKey, type Membership } from '../../matrix/types.js';
import type { RoomStore, StoredEvent } from '../../storage/rooms/store.js';
import type { RoomsExtraStore, SearchHit } from '../../storage/rooms-extra/store.js';
import { Errors } from '../../util/errors.js';
import type { ClientEvent, ClientEventSerializer, Viewer } from '../rooms/client-events.js';
import type { EventCreator } from '../rooms/event-creator.js';
import { formatTopoToken, parseRoomEventFilter, type RoomEventFilter } from '../rooms/pagination.js';
import type { VisibilityChecker } from '../rooms/visibility.js';
import type { EventsPosition } from '../../streams/tokens.js';

const KEYS = ['content.body', 'content.name', 'content.topic'];
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;
const MAX_CONTEXT = 100;
/** Longest wait for this process's events position to reach the database's. */
const CATCH_UP_WAIT_MS = 2000;

export interface SearchDeps {
  store: RoomsExtraStore;
  roomStore: RoomStore;
  serializer: ClientEventSerializer;
  visibility: VisibilityChecker;
  creator: EventCreator;
  /** The events stream position readers may see (writer by writer with several event persisters). */
  position: () => EventsPosition;
  /**
   * Several event persisters: up to where a room may be read at `at` (its
   * persister's part of it). Absent: every room as far as it is indexed.
   */
  roomStream?: (roomId: string, at: EventsPosition) => number;
  /**
   * Worker mode: brings the positions up to date (writes acknowledged by
   * other processes become visible). Absent: the position is local.
   */
  freshPositions?: () => Promise<void>;
}

export interface RoomEventsCriteria {
  searchTerm: string;
  keys: string[];
  filter: RoomEventFilter;
  orderBy: 'rank' | 'recent';
  eventContext?: { beforeLimit: number; afterLimit: number; includeProfile: boolean };
  includeState: boolean;
  groupBy: Array<'room_id' | 'sender'>;
}

/** Validates the room_events criteria of a /search body (M_BAD_JSON / M_INVALID_PARAM). */
export function parseRoomEventsCriteria(raw: unknown): RoomEventsCriteria {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw Errors.badJson("'room_events' must be an object");
  const o = raw as Record<string, any>;
  if (o.search_term === undefined || o.search_term === null) throw Errors.missingParam('search_term');
  if (typeof o.search_term !== 'string') throw Errors.badJson("'search_term' must be a string");
  let keys = KEYS;
  if (o.keys !== undefined && o.keys !== null) {
    if (!Array.isArray(o.keys) || o.keys.some((k: unknown) => typeof k !== 'string')) throw Errors.badJson("'keys' must be a list of strings");
    for (const k of o.keys) if (!KEYS.includes(k)) throw Errors.invalidParam(`Unknown search key: ${k}`);
    keys = o.keys;
  }
  let orderBy: 'rank' | 'recent' = 'rank';
  if (o.order_by !== undefined && o.order_by !== null) {
    if (o.order_by !== 'rank' && o.order_by !== 'recent') throw Errors.invalidParam("'order_by' must be 'rank' or 'recent'");
    orderBy = o.order_by;
  }
  const c: RoomEventsCriteria = {
    searchTerm: o.search_term,
    keys,
    filter: parseRoomEventFilter(o.filter),
    orderBy,
    includeState: false,
    groupBy: [],
  };
  if (o.event_context !== undefined && o.event_context !== null) {
    const ec = o.event_context;
    if (typeof ec !== 'object' || Array.isArray(ec)) throw Errors.badJson("'event_context' must be an object");
    const int = (k: string, def: number) => {
      const v = ec[k];
      if (v === undefined || v === null) return def;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw Errors.badJson(`'event_context.${k}' must be a non-negative integer`);
      return Math.min(v, MAX_CONTEXT);
    };
    if (ec.include_profile !== undefined && typeof ec.include_profile !== 'boolean') throw Errors.badJson("'include_profile' must be a boolean");
    c.eventContext = { beforeLimit: int('before_limit', 5), afterLimit: int('after_limit', 5), includeProfile: ec.include_profile === true };
  }
  if (o.include_state !== undefined && o.include_state !== null) {
    if (typeof o.include_state !== 'boolean') throw Errors.badJson("'include_state' must be a boolean");
    c.includeState = o.include_state;
  }
  if (o.groupings !== undefined && o.groupings !== null) {
    const g = o.groupings;
    if (typeof g !== 'object' || Array.isArray(g)) throw Errors.badJson("'groupings' must be an object");
    if (g.group_by !== undefined) {
      if (!Array.isArray(g.group_by)) throw Errors.badJson("'group_by' must be a list");
      for (const x of g.group_by) {
        if (!x || typeof x !== 'object' || (x.key !== 'room_id' && x.key !== 'sender')) throw Errors.invalidParam("group_by keys must be 'room_id' or 'sender'");
        c.groupBy.push(x.key);
      }
    }
  }
  return c;
}

/** Search words: letters/digits runs of the term, lower-cased, deduplicated. */
export function searchWords(term: string): string[] {
  return [...new Set((term.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? []).slice(0, 20))];
}

interface ResultEntry {
  rank: number;
  result: ClientEvent;
  context?: Record<string, any>;
}

export class SearchService {
  private indexing: Promise<void> | undefined;

  constructor(private readonly d: SearchDeps) {}

  /** Brings event_search up to the current events position (single-flight per process). */
  async catchUp(): Promise<void> {
    while (this.indexing) await this.indexing;
    if (this.d.freshPositions) {
      // Worker mode: this process's view trails the writers by a replication
      // hop; the recorded positions cover every acknowledged write.
      await this.d.freshPositions();
    } else {
      // Wait (briefly, bounded) until the position covers what the database holds.
      const target = await this.d.roomStore.maxStreamOrdering();
      for (let waited = 0; this.d.position().min < target && waited < CATCH_UP_WAIT_MS; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const upTo = this.d.position();
    this.indexing = (async () => {
      for (let i = 0; i < 10_000; i++) if (await this.d.store.indexSearch(upTo)) return;
    })().finally(() => (this.indexing = undefined));
    await this.indexing;
  }

  async searchRoomEvents(viewer: Viewer, c: RoomEventsCriteria, nextBatch: string | undefined) {
    const words = searchWords(c.searchTerm);
    const limit = Math.min(c.filter.limit ?? DEFAULT_LIMIT, MAX_LIMIT) || DEFAULT_LIMIT;
    let offset = 0;
    let before: number | undefined;
    if (nextBatch !== undefined) {
      const m = /^([rs])(\d{1,16})$/.exec(nextBatch);
      if (!m || (m[1] === 'r') !== (c.orderBy === 'rank')) throw Errors.invalidParam('Invalid next_batch token');
      if (m[1] === 'r') offset = Number(m[2]);
      else before = Number(m[2]);
    }

    // Rooms the user is or was in, narrowed by the filter.
    const memberships: Membership[] = ['join', 'leave', 'ban'];
    let roomIds = (await this.d.roomStore.getRoomsForUser(viewer.userId, memberships)).map((r) => r.roomId);
    if (c.filter.rooms) roomIds = roomIds.filter((r) => c.filter.rooms!.includes(r));
    if (c.filter.notRooms) roomIds = roomIds.filter((r) => !c.filter.notRooms!.includes(r));

    const empty = { count: 0, highlights: words, results: [] as ResultEntry[] };
    if (!words.length || !roomIds.length) return { search_categories: { room_events: empty } };
    await this.catchUp();
    const at = this.d.position();
    const roomStream = this.d.roomStream;

    // Fetch hits until `limit` visible ones are found or the index runs out.
    const picked: Array<{ hit: SearchHit; event: StoredEvent }> = [];
    let count = 0;
    let exhausted = false;
    for (let round = 0; round < 10 && picked.length < limit; round++) {
      const { hits, count: total } = await this.d.store.search({
        words,
        roomIds,
        keys: c.keys,
        ...(c.filter.senders ? { senders: c.filter.senders } : {}),
        ...(c.filter.notSenders ? { notSenders: c.filter.notSenders } : {}),
        orderBy: c.orderBy,
        ...(before !== undefined ? { before } : {}),
        offset,
        limit,
        ...(roomStream ? { roomUpTo: (roomId: string) => roomStream(roomId, at) } : {}),
      });
      if (round === 0) count = total;
      if (hits.length < limit) exhausted = true;
      const events = await this.d.roomStore.getEvents(hits.map((h) => h.eventId));
      const candidates = hits
        .map((hit) => ({ hit, event: events.get(hit.eventId) }))
        .filter((x): x is { hit: SearchHit; event: StoredEvent } => !!x.event && !x.event.redactedBy && typeMatches(c.filter, x.event));
      const visible = await this.visibleHits(viewer.userId, candidates);
      for (const v of visible) {
        if (picked.length >= limit) break;
        picked.push(v);
      }
      // Position after the last hit consumed (the whole page, or up to the last picked one).
      const consumed = picked.length >= limit ? hits.findIndex((h) => h.eventId === picked[picked.length - 1]!.hit.eventId) + 1 : hits.length;
      offset += consumed;
      if (hits.length) before = hits[Math.max(0, consumed - 1)]!.streamOrdering;
      if (exhausted) break;
    }

    const serialized = await this.d.serializer.serialize(picked.map((p) => p.event), viewer);
    const results: ResultEntry[] = picked.map((p, i) => ({ rank: p.hit.rank, result: serialized[i]! }));
    if (c.eventContext) {
      await Promise.all(picked.map(async (p, i) => (results[i]!.context = await this.context(viewer, p.event, c.eventContext!))));
    }
    const out: Record<string, any> = { count, highlights: words, results };
    const more = !exhausted || picked.length >= limit;
    if (more && picked.length) out.next_batch = c.orderBy === 'rank' ? `r${offset}` : `s${before}`;
    if (c.groupBy.length) {
      const groups: Record<string, Record<string, { results: string[]; order: number; next_batch?: string }>> = {};
      for (const key of c.groupBy) {
        const g: Record<string, { results: string[]; order: number; next_batch?: string }> = {};
        for (const p of picked) {
          const v = key === 'room_id' ? p.event.roomId : p.event.event.sender;
          const entry = g[v] ?? (g[v] = { results: [], order: Object.keys(g).length + 1 });
          entry.results.push(p.event.event.event_id);
        }
        if (out.next_batch) for (const v of Object.values(g)) v.next_batch = out.next_batch;
        groups[key] = g;
      }
      out.groups = groups;
    }
    if (c.includeState) {
      const state: Record<string, ClientEvent[]> = {};
      for (const roomId of new Set(picked.map((p) => p.event.roomId))) {
        state[roomId] = await this.d.serializer.serialize(await this.d.roomStore.getCurrentStateEvents(roomId), viewer);
      }
      out.state = state;
    }
    return { search_categories: { room_events: out } };
  }

  private async visibleHits<T extends { event: StoredEvent }>(userId: string, xs: T[]): Promise<T[]> {
    const byRoom = new Map<string, StoredEvent[]>();
    for (const x of xs) (byRoom.get(x.event.roomId) ?? byRoom.set(x.event.roomId, []).get(x.event.roomId)!).push(x.event);
    const ok = new Set<string>();
    await Promise.all(
      [...byRoom].map(async ([roomId, evs]) => {
        for (const e of await this.d.visibility.filter(userId, roomId, evs)) ok.add(e.event.event_id);
      }),
    );
    return xs.filter((x) => ok.has(x.event.event.event_id));
  }

  /** Events around a hit (visible ones only), with the senders' profiles when asked. */
  private async context(viewer: Viewer, se: StoredEvent, o: { beforeLimit: number; afterLimit: number; includeProfile: boolean }) {
    const roomId = se.roomId;
    const pos = { topo: se.topologicalOrdering, stream: se.streamOrdering };
    const [rawBefore, rawAfter] = await Promise.all([
      o.beforeLimit ? this.d.roomStore.paginate(roomId, { from: { topo: pos.topo, stream: pos.stream - 1 }, dir: 'b', limit: o.beforeLimit }) : Promise.resolve([]),
      o.afterLimit ? this.d.roomStore.paginate(roomId, { from: pos, dir: 'f', limit: o.afterLimit }) : Promise.resolve([]),
    ]);
    const [visBefore, visAfter] = await Promise.all([
      this.d.visibility.filter(viewer.userId, roomId, rawBefore),
      this.d.visibility.filter(viewer.userId, roomId, rawAfter),
    ]);
    const oldest = rawBefore.length ? rawBefore[rawBefore.length - 1]! : se;
    const newest = rawAfter.length ? rawAfter[rawAfter.length - 1]! : se;
    const ctx: Record<string, any> = {
      start: formatTopoToken({ topo: oldest.topologicalOrdering, stream: oldest.streamOrdering - 1 }),
      end: formatTopoToken({ topo: newest.topologicalOrdering, stream: newest.streamOrdering }),
      events_before: await this.d.serializer.serialize(visBefore, viewer),
      events_after: await this.d.serializer.serialize(visAfter, viewer),
    };
    if (o.includeProfile) {
      const room = await this.d.creator.getRoomState(roomId);
      const profiles: Record<string, { displayname?: string; avatar_url?: string }> = {};
      for (const sender of new Set([se, ...visBefore, ...visAfter].map((e) => e.event.sender))) {
        const c = room?.state.get(stateKey('m.room.member', sender))?.content as Record<string, any> | undefined;
        const p: { displayname?: string; avatar_url?: string } = {};
        if (typeof c?.displayname === 'string') p.displayname = c.displayname;
        if (typeof c?.avatar_url === 'string') p.avatar_url = c.avatar_url;
        profiles[sender] = p;
      }
      ctx.profile_info = profiles;
    }
    return ctx;
  }
}

function typeMatches(f: RoomEventFilter, se: StoredEvent): boolean {
  const t = se.event.type;
  const glob = (p: string) => (p.endsWith('*') ? t.startsWith(p.slice(0, -1)) : t === p);
  if (f.types && !f.types.some(glob)) return false;
  if (f.notTypes?.some(glob)) return false;
  if (f.containsUrl !== undefined && (typeof (se.event.content as any)?.url === 'string') !== f.containsUrl) return false;
  return true;
}
