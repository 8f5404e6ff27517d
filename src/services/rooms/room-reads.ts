/**
 * Reading rooms from the client API: single events, /messages, /context,
 * state, members, joined rooms, timestamp lookup. History visibility is
 * applied to every batch (visibility.ts); users who left read the room as it
 * was when they left.
 */
import { isValidRoomId } from '../../matrix/identifiers.js';
import { splitStateKey, stateKey, type Membership, type StateIds } from '../../matrix/types.js';
import type { WalkBound } from '../../storage/rooms/event-sql.js';
import type { MemberRow, StoredEvent, TopoPosition, ViewerPage } from '../../storage/rooms/store.js';
import type { EventsPosition } from '../../streams/tokens.js';
import { Errors } from '../../util/errors.js';
import type { ClientEvent, Viewer } from './client-events.js';
import type { RoomsContext } from './context.js';
import { formatTopoToken, parsePaginationToken, type RoomEventFilter } from './pagination.js';
import { visibilityFilter } from './visibility.js';

export interface RoomAccess {
  /** Current membership row, if the user ever had one. */
  member?: MemberRow;
  joined: boolean;
  worldReadable: boolean;
  /** Users who left: the position of their leave (they read up to it). */
  leftAt?: { eventId: string; pos: TopoPosition };
}

export interface MessagesResult {
  chunk: ClientEvent[];
  start: string;
  end?: string;
  state?: ClientEvent[];
}

const MAX_LIMIT = 1000;
/** timestamp_to_event: candidates read per batch (doubling up to the max). */
const TS_BATCH_FIRST = 20;
const TS_BATCH_MAX = 500;

function cmp(a: TopoPosition, b: TopoPosition): number {
  return a.topo - b.topo || a.stream - b.stream;
}

function posOf(se: StoredEvent): TopoPosition {
  return { topo: se.topologicalOrdering, stream: se.streamOrdering };
}

/** Position just before an event. */
function before(se: StoredEvent): TopoPosition {
  return { topo: se.topologicalOrdering, stream: se.streamOrdering - 1 };
}

export class RoomReadService {
  constructor(
    private readonly ctx: RoomsContext,
    /**
     * The events stream position up to which a room's events may be read:
     * at the current position, or at `at` (a sync token's events part). With
     * several event persisters, the room's persister's own position in it.
     */
    private readonly roomStream: (roomId: string, at?: EventsPosition) => number,
    /** Worker mode: brings the positions up to date before a read at the current position. */
    private readonly freshPositions?: () => Promise<void>,
  ) {}

  /** Who may read the room at all: members (current or past) and anyone if world_readable. */
  async access(userId: string, roomId: string): Promise<RoomAccess> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const [member, worldReadable] = await Promise.all([
      this.ctx.store.getMembership(roomId, userId),
      this.ctx.visibility.isWorldReadable(roomId),
    ]);
    return this.decideAccess(userId, roomId, member, worldReadable);
  }

  /**
   * `access` and the history visibility filter of the user in the room,
   * from one read (`readAccess`).
   */
  private async accessAndVisibility(userId: string, roomId: string): Promise<{ acc: RoomAccess; visible: (events: readonly StoredEvent[]) => StoredEvent[] }> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const r = await this.ctx.store.readAccess(roomId, userId);
    const acc = await this.decideAccess(userId, roomId, r.member, r.historyVisibility?.history_visibility === 'world_readable');
    return { acc, visible: visibilityFilter(userId, r.memberships, r.visibilityHistory) };
  }

  private async decideAccess(userId: string, roomId: string, member: MemberRow | undefined, worldReadable: boolean): Promise<RoomAccess> {
    const joined = member?.membership === 'join';
    const acc: RoomAccess = { joined, worldReadable, ...(member ? { member } : {}) };
    if (!joined && !worldReadable) {
      if (!member || (member.membership !== 'leave' && member.membership !== 'ban')) {
        throw Errors.forbidden(`You are not allowed to view room ${roomId} (not a member)`);
      }
      const ev = await this.ctx.store.getEvent(member.eventId);
      if (ev) acc.leftAt = { eventId: member.eventId, pos: posOf(ev) };
    }
    return acc;
  }

  /** GET /rooms/{roomId}/event/{eventId}. */
  async getEvent(viewer: Viewer, roomId: string, eventId: string): Promise<ClientEvent> {
    await this.access(viewer.userId, roomId);
    const se = await this.ctx.store.getEvent(eventId);
    if (!se || se.roomId !== roomId || se.outlier || se.rejectedReason) throw Errors.notFound('Event not found');
    const visible = await this.ctx.visibility.filter(viewer.userId, roomId, [se]);
    if (!visible.length) throw Errors.notFound('Event not found');
    return this.ctx.serializer.serializeOne(se, viewer);
  }

  /**
   * GET /rooms/{roomId}/messages. With a `from` token (a page's `end`, or a
   * sync token, resolved by the statement itself) it is one statement
   * (`readAccessAndPage`): the access check with the visibility timelines,
   * and the page with the viewer's transaction ids and which events have
   * relations. From the room's end, the bounds are read first, alongside
   * the access check. The page is read again only when the user left and
   * their leave moves the bounds; bundled aggregations are read only for
   * pages with relations. Errors keep their order: access first, then the
   * tokens.
   */
  async messages(
    viewer: Viewer,
    roomId: string,
    o: { from?: string; to?: string; dir: 'b' | 'f'; limit?: number; filter?: RoomEventFilter },
  ): Promise<MessagesResult> {
    const limit = Math.min(Math.max(o.limit ?? 10, 0), MAX_LIMIT);
    const filter = o.filter ?? {};
    const pageOpts = (from: WalkBound, to: WalkBound | null) => ({ from, to, dir: o.dir, limit, filter });
    const page = (from: TopoPosition, to: TopoPosition | null): Promise<ViewerPage> =>
      limit ? this.ctx.store.paginateForViewer(roomId, pageOpts(from, to), viewer) : Promise.resolve({ events: [], txnIds: new Map(), related: new Set() });

    let acc: RoomAccess;
    let visibleOf: (events: readonly StoredEvent[]) => StoredEvent[];
    let got: ViewerPage;
    let resolved: Promise<{ from: TopoPosition; to: TopoPosition | null; start: string }> | undefined;
    const fast = isValidRoomId(roomId) ? this.tokenBounds(roomId, o) : undefined;
    if (fast) {
      const r = await this.ctx.store.readAccessAndPage(roomId, pageOpts(fast.from, fast.to), viewer);
      acc = await this.decideAccess(viewer.userId, roomId, r.access.member, r.access.historyVisibility?.history_visibility === 'world_readable');
      visibleOf = visibilityFilter(viewer.userId, r.access.memberships, r.access.visibilityHistory);
      got = r.page;
    } else {
      const accessP = this.accessAndVisibility(viewer.userId, roomId);
      const boundsP = this.bounds(roomId, o);
      const pageP = boundsP.then((b) => page(b.from, b.to));
      // Settled even when an earlier step throws (no unhandled rejection).
      for (const p of [boundsP, pageP]) p.catch(() => {});
      ({ acc, visible: visibleOf } = await accessP);
      resolved = boundsP;
      got = await pageP;
    }
    const start = o.from ?? (await resolved!).start;
    // Users who left read up to their leave (bounds as positions, read if need be).
    const left = acc.leftAt?.pos;
    if (left) {
      const { from, to } = await (resolved ?? this.bounds(roomId, o));
      if (o.dir === 'b' && cmp(from, left) > 0) got = await page(left, to);
      else if (o.dir === 'f' && (!to || cmp(to, left) > 0)) got = await page(from, left);
    }
    const raw = got.events;
    const visible = raw.length ? visibleOf(raw) : [];
    const serializer = this.ctx.serializer;
    // The page's transaction ids were read with it.
    const asked = new Set(visible.map((e) => e.event.event_id));
    const chunk = await serializer.serializePlain(visible, viewer, { knownTxnIds: { asked, ids: got.txnIds } });
    if (visible.some((e) => got.related.has(e.event.event_id))) await serializer.decorate(visible, chunk, viewer);
    const out: MessagesResult = { chunk, start };
    if (raw.length === limit && raw.length > 0) {
      const last = raw[raw.length - 1]!;
      out.end = formatTopoToken(o.dir === 'b' ? before(last) : posOf(last));
    }
    if (filter.lazyLoadMembers && visible.length) {
      out.state = await this.memberStateFor(roomId, visible, viewer);
    }
    return out;
  }

  /**
   * /messages bounds known without a read: `from` and any `to` given, each a
   * topological token or a sync token (a stream bound the statement
   * resolves). Undefined otherwise, or when a token is malformed (the
   * read path reports it, after the access check).
   */
  private tokenBounds(roomId: string, o: { from?: string; to?: string }): { from: WalkBound; to: WalkBound | null } | undefined {
    if (!o.from) return undefined;
    try {
      const bound = (token: string): WalkBound => {
        const t = parsePaginationToken(token);
        return t.kind === 'topo' ? t.pos : { roomId, stream: this.roomStream(roomId, t.events) };
      };
      return { from: bound(o.from), to: o.to ? bound(o.to) : null };
    } catch {
      return undefined;
    }
  }

  /** /messages: where the walk starts and stops, from the tokens (`start`: the token served as such). */
  private async bounds(
    roomId: string,
    o: { from?: string; to?: string; dir: 'b' | 'f' },
  ): Promise<{ from: TopoPosition; to: TopoPosition | null; start: string }> {
    const [fromTok, to] = await Promise.all([
      o.from ? this.toPosition(roomId, o.from) : null,
      o.to ? this.toPosition(roomId, o.to) : null,
    ]);
    if (fromTok) return { from: fromTok, to, start: o.from! };
    let from: TopoPosition;
    if (o.dir === 'b') {
      await this.freshPositions?.(); // a write just acknowledged by another process is visible
      const cur = this.roomStream(roomId);
      from = (await this.ctx.store.topoPositionAtStream(roomId, cur)) ?? { topo: 0, stream: cur };
    } else from = { topo: 0, stream: 0 };
    return { from, to, start: formatTopoToken(from) };
  }

  /** GET /rooms/{roomId}/context/{eventId}. */
  async context(viewer: Viewer, roomId: string, eventId: string, limitIn: number, filter: RoomEventFilter = {}) {
    const acc = await this.access(viewer.userId, roomId);
    const se = await this.ctx.store.getEvent(eventId);
    if (!se || se.roomId !== roomId || se.outlier || se.rejectedReason) throw Errors.notFound('Event not found');
    if (!(await this.ctx.visibility.filter(viewer.userId, roomId, [se])).length) throw Errors.notFound('Event not found');
    const limit = Math.min(Math.max(limitIn, 0), MAX_LIMIT);
    const nBefore = Math.floor(limit / 2);
    const nAfter = limit - nBefore;
    const store = this.ctx.store;
    const afterTo = acc.leftAt?.pos ?? null;
    const [rawBefore, rawAfter] = await Promise.all([
      nBefore ? store.paginate(roomId, { from: before(se), dir: 'b', limit: nBefore, filter }) : Promise.resolve([]),
      nAfter && !(afterTo && cmp(posOf(se), afterTo) >= 0)
        ? store.paginate(roomId, { from: posOf(se), to: afterTo, dir: 'f', limit: nAfter, filter })
        : Promise.resolve([]),
    ]);
    const [visBefore, visAfter] = await Promise.all([
      this.ctx.visibility.filter(viewer.userId, roomId, rawBefore),
      this.ctx.visibility.filter(viewer.userId, roomId, rawAfter),
    ]);
    const oldest = rawBefore.length ? rawBefore[rawBefore.length - 1]! : se;
    const newest = rawAfter.length ? rawAfter[rawAfter.length - 1]! : se;
    const stateIds = await this.stateIdsAtEvent(newest.event.event_id);
    let ids = [...stateIds.entries()];
    if (filter.lazyLoadMembers) {
      const senders = new Set([se, ...visBefore, ...visAfter].map((e) => e.event.sender));
      ids = ids.filter(([k]) => {
        const [type, sk] = splitStateKey(k);
        return type !== 'm.room.member' || senders.has(sk);
      });
    }
    const stateEvents = await store.getEvents(ids.map(([, id]) => id));
    const [event, eventsBefore, eventsAfter, state] = await Promise.all([
      this.ctx.serializer.serializeOne(se, viewer),
      this.ctx.serializer.serialize(visBefore, viewer),
      this.ctx.serializer.serialize(visAfter, viewer),
      this.ctx.serializer.serialize([...stateEvents.values()], viewer),
    ]);
    return {
      event,
      events_before: eventsBefore,
      events_after: eventsAfter,
      start: formatTopoToken(before(oldest)),
      end: formatTopoToken(posOf(newest)),
      state,
    };
  }

  /** GET /rooms/{roomId}/state. */
  async state(viewer: Viewer, roomId: string): Promise<ClientEvent[]> {
    const acc = await this.access(viewer.userId, roomId);
    if (acc.leftAt) {
      const ids = await this.stateIdsAtEvent(acc.leftAt.eventId);
      const evs = await this.ctx.store.getEvents([...ids.values()]);
      return this.ctx.serializer.serialize([...evs.values()].sort((a, b) => a.streamOrdering - b.streamOrdering), viewer);
    }
    return this.ctx.serializer.serialize(await this.ctx.store.getCurrentStateEvents(roomId), viewer);
  }

  /** GET /rooms/{roomId}/state/{type}/{stateKey}. */
  async stateEvent(viewer: Viewer, roomId: string, type: string, sk: string): Promise<ClientEvent> {
    const acc = await this.access(viewer.userId, roomId);
    let se: StoredEvent | undefined;
    if (acc.leftAt) {
      const id = (await this.stateIdsAtEvent(acc.leftAt.eventId)).get(stateKey(type, sk));
      se = id ? await this.ctx.store.getEvent(id) : undefined;
    } else {
      se = await this.ctx.store.getCurrentStateEvent(roomId, type, sk);
    }
    if (!se) throw Errors.notFound(`No ${type} state with state_key '${sk}' in this room`);
    return this.ctx.serializer.serializeOne(se, viewer);
  }

  /** GET /rooms/{roomId}/members. */
  async members(viewer: Viewer, roomId: string, o: { at?: string; membership?: Membership; notMembership?: Membership }): Promise<ClientEvent[]> {
    const acc = await this.access(viewer.userId, roomId);
    let events: StoredEvent[];
    let atPos: TopoPosition | null = o.at ? await this.toPosition(roomId, o.at) : null;
    if (acc.leftAt && (!atPos || cmp(atPos, acc.leftAt.pos) > 0)) atPos = acc.leftAt.pos;
    if (atPos) {
      const [last] = await this.ctx.store.paginate(roomId, { from: atPos, dir: 'b', limit: 1 });
      const ids = last ? await this.stateIdsAtEvent(last.event.event_id) : new Map<string, string>();
      const memberIds = [...ids.entries()].filter(([k]) => splitStateKey(k)[0] === 'm.room.member').map(([, id]) => id);
      events = [...(await this.ctx.store.getEvents(memberIds)).values()];
    } else {
      events = await this.ctx.store.getCurrentStateEvents(roomId, ['m.room.member']);
    }
    events = events.filter((e) => {
      const m = (e.event.content as any)?.membership;
      if (o.membership && m !== o.membership) return false;
      if (o.notMembership && m === o.notMembership) return false;
      return true;
    });
    events.sort((a, b) => a.streamOrdering - b.streamOrdering);
    return this.ctx.serializer.serialize(events, viewer);
  }

  /** GET /rooms/{roomId}/joined_members. */
  async joinedMembers(viewer: Viewer, roomId: string): Promise<Record<string, { display_name?: string; avatar_url?: string }>> {
    const acc = await this.access(viewer.userId, roomId);
    if (!acc.joined && !acc.worldReadable) throw Errors.forbidden(`You are not joined to room ${roomId}`);
    const room = await this.ctx.creator.getRoomState(roomId);
    const joined: Record<string, { display_name?: string; avatar_url?: string }> = {};
    for (const [k, ev] of room?.state ?? []) {
      const [type, sk] = splitStateKey(k);
      const c = ev.content as Record<string, any>;
      if (type !== 'm.room.member' || c?.membership !== 'join') continue;
      const entry: { display_name?: string; avatar_url?: string } = {};
      if (typeof c.displayname === 'string') entry.display_name = c.displayname;
      if (typeof c.avatar_url === 'string') entry.avatar_url = c.avatar_url;
      joined[sk] = entry;
    }
    return joined;
  }

  /** GET /joined_rooms. */
  async joinedRooms(userId: string): Promise<string[]> {
    return (await this.ctx.store.getRoomsForUser(userId, ['join'])).map((r) => r.roomId);
  }

  /**
   * GET /v1/rooms/{roomId}/timestamp_to_event: the closest event the user may
   * see. Candidates are read in timestamp order a batch at a time (batches
   * grow), each batch filtered by history visibility in one go; the walk goes
   * on while a whole batch is hidden.
   */
  async timestampToEvent(viewer: Viewer, roomId: string, ts: number, dir: 'f' | 'b'): Promise<{ event_id: string; origin_server_ts: number }> {
    await this.access(viewer.userId, roomId);
    let after: { ts: number; stream: number } | undefined;
    for (let batch = TS_BATCH_FIRST; ; batch = Math.min(batch * 2, TS_BATCH_MAX)) {
      const candidates = await this.ctx.store.eventsAtTimestamp(roomId, ts, dir, batch, after);
      const [first] = await this.ctx.visibility.filter(viewer.userId, roomId, candidates);
      if (first) return { event_id: first.event.event_id, origin_server_ts: Number(first.event.origin_server_ts) };
      if (candidates.length < batch) break;
      const last = candidates[candidates.length - 1]!;
      after = { ts: Number(last.event.origin_server_ts), stream: last.streamOrdering };
    }
    throw Errors.notFound(`No visible event found ${dir === 'f' ? 'after' : 'before'} ${ts}`);
  }

  // --------------------------------------------------------------- helpers

  /** State after an event (its state group). */
  async stateIdsAtEvent(eventId: string): Promise<StateIds> {
    const g = (await this.ctx.store.getStateGroups([eventId])).get(eventId);
    return g === undefined ? new Map() : this.ctx.store.getStateIdsForGroup(g);
  }

  /** A /messages token, or a /sync token read for this room (its events writer's position in it). */
  async toPosition(roomId: string, token: string): Promise<TopoPosition> {
    const t = parsePaginationToken(token);
    if (t.kind === 'topo') return t.pos;
    const stream = this.roomStream(roomId, t.events);
    return (await this.ctx.store.topoPositionAtStream(roomId, stream)) ?? { topo: 0, stream };
  }

  /** Current member events of the senders of `events` (lazy-loading members). */
  private async memberStateFor(roomId: string, events: StoredEvent[], viewer: Viewer): Promise<ClientEvent[]> {
    const room = await this.ctx.creator.getRoomState(roomId);
    const ids: string[] = [];
    for (const sender of new Set(events.map((e) => e.event.sender))) {
      const ev = room?.state.get(stateKey('m.room.member', sender));
      if (ev) ids.push(ev.event_id);
    }
    const got = await this.ctx.store.getEvents(ids);
    return this.ctx.serializer.serialize([...got.values()], viewer);
  }
}
