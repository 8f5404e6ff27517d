/**
 * GET /sync (client-server API "Syncing"): initial and incremental syncs,
 * long-polling on the notifier.
 *
 * A response covers the stream positions (since, to], where `to` is the
 * current token when the computation starts. Sources owned by other
 * capabilities (receipts, account data, presence, to-device, push, e2ee) are
 * read from `services` at request time and their section is left out when
 * they are not wired.
 *
 * Cost: every room-related read is batched over all the rooms of the response
 * (SyncStore), so the number of queries does not grow with the room count;
 * an incremental sync when no stream moved does no room work at all. Reads
 * that do not depend on each other are started together (on PostgreSQL they
 * run on different pool connections): the rooms start with the other
 * streams, unread counts and summaries with the timelines. Whether other
 * events relate to the timeline events (bundled aggregations), and the
 * sending device and transaction id of each, come with the timelines, in
 * the same statement. An initial sync waits for five rounds of statements
 * (memberships, timelines, state groups, state events, the viewer's
 * transaction ids of the state events), four when the state before its
 * timelines is already known (state-cache.ts).
 */
import type { Services } from '../../app/services.js';
import { eventMatches, projectEventFields, roomAllowed, type RoomEventFilter, type SyncFilter } from '../../matrix/filter-apply.js';
import type { StoredEvent } from '../../storage/rooms/store.js';
import type { EventsBound, MembershipAt, SyncStore, TimelineExtras, TimelineFilterSql, TimelineRange } from '../../storage/sync/sync-store.js';
import type { Notifier } from '../../streams/notifier.js';
import type { WaitSignal } from '../../streams/notifier-types.js';
import type { ClientEvent, PresenceState, UnreadCounts } from '../../streams/sync-sources.js';
import {
  decodeSyncToken,
  encodeSyncToken,
  eventsCovers,
  hasWriterParts,
  sameEventsPosition,
  SYNC_STREAMS,
  tokenCovers,
  type EventsPosition,
  type SyncStreamName,
  type SyncToken,
} from '../../streams/tokens.js';
import { Errors } from '../../util/errors.js';
import type { KnownTxnIds } from '../rooms/client-events.js';
import type { TypingService } from '../typing/typing-service.js';
import { selectRooms, type MembershipCache } from './membership-cache.js';
import { PositionMemo, type RecentEvents } from './recent-events.js';
import { serializeEvents, strippedState, type ClientRoomEvent } from './serialize.js';
import { StateCache, type StateMap } from './state-cache.js';
import { filterVisible } from './visibility.js';

export const DEFAULT_TIMELINE_LIMIT = 10;
const MAX_TIMELINE_LIMIT = 1000;
const TO_DEVICE_LIMIT = 100;
/** Streams that live in memory (reset on restart): a token ahead of them is clamped, not refused. */
const EPHEMERAL_STREAMS: SyncStreamName[] = ['typing', 'presence'];

/** The `since` token decoded, or undefined when it is malformed (parseSince refuses it then). */
function decodeSinceOrUndefined(since: string): SyncToken | undefined {
  try {
    return decodeSyncToken(since);
  } catch {
    return undefined;
  }
}

/**
 * Whether a /sync must first read every writer's recorded position (worker
 * mode, `freshPositions`), so that a write another process acknowledged is
 * in the answer even if its rows are still on their way over Redis: yes for
 * an initial sync, `timeout=0`, `full_state`, and a token from a process
 * ahead of this one (a quiet read instead of a catch-up that wakes every
 * long-poll). A long-poll from a token this process has reached does
 * without: such a write's rows wake it as they arrive (a missed row shows
 * as a gap at the writer's next row, or at the periodic catch-up), so the
 * client gets the write in this answer or the next. Most long-polls are
 * the re-polls right after an answer.
 */
export function needsFreshPositions(req: Pick<SyncRequest, 'since' | 'timeoutMs' | 'fullState'>, tokenAhead: () => boolean): boolean {
  return req.since === undefined || req.timeoutMs <= 0 || req.fullState || tokenAhead();
}

const STRIPPED_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

export interface SyncRequest {
  userId: string;
  deviceId: string | null;
  since?: string;
  filter: SyncFilter;
  fullState: boolean;
  timeoutMs: number;
  setPresence?: PresenceState;
  signal?: WaitSignal;
  /** Keep room_id on room events (legacy endpoints). */
  withRoomId?: boolean;
}

type Json = Record<string, any>;

interface RoomPlan {
  roomId: string;
  section: 'join' | 'leave';
  /** Timeline range (from, to]: stream orderings, or per events writer (a sync token's events part). */
  from: EventsBound;
  to: EventsBound;
  /** Send the full state before the timeline (else: changes since `since`). */
  fullState: boolean;
  /** The user was not joined throughout: filter by history visibility. */
  checkVisibility: boolean;
  /** Stream ordering of the user's membership event (as of `to`). */
  membershipOrdering: number;
}

const sk = (type: string, stateKey: string) => `${type}\u0000${stateKey}`;

/** Timelines read, with what the same statement said of their events (SyncStore.timelines). */
interface Timelines {
  events: Map<string, StoredEvent[]>;
  /** Events another event relates to. */
  related: ReadonlySet<string>;
  /** Sending device and transaction id of the events a client sent. */
  txns: ReadonlyMap<string, { deviceId: string; txnId: string }>;
}

/** Timeline reads shared between responses: at most this many rooms per read (incremental syncs). */
const SHARED_TIMELINE_ROOMS = 8;

export class SyncService {
  /** Member events sent to each device (lazy-loading without redundant members). */
  private readonly sentMembers = new Map<string, Map<string, Set<string>>>();
  /**
   * Per device: a to_device position at or below which its inbox is known
   * to be empty (deleted up to it, and nothing found above). A sync whose
   * `since` is not above it has nothing to acknowledge: no delete (in worker
   * mode an HTTP call to the to_device writer). Positions only grow and
   * everything at or below the current one has committed, so the knowledge
   * holds whichever process writes or deletes.
   */
  private readonly inboxEmptyThrough = new Map<string, number>();
  /** Identical timeline reads at one events position (every member of a room woken by its message). */
  private readonly sharedTimelines: PositionMemo<Timelines>;
  /** The state after events (state groups never change: kept without invalidation). */
  readonly states: StateCache;

  constructor(
    private readonly services: Services,
    private readonly store: SyncStore,
    private readonly notifier: Notifier,
    private readonly typing: TypingService,
    /** The per-user membership cache (membership-cache.ts). */
    readonly memberships: MembershipCache,
    /** The window of recent events shared by all responses (recent-events.ts). */
    private readonly recent: RecentEvents,
    /** The events stream's current position (with several writers, a key of every writer's position). */
    position: () => number | string,
  ) {
    this.sharedTimelines = new PositionMemo(position, 64);
    this.states = new StateCache(store);
  }

  /**
   * Whether a `since` token names positions this process has not reached
   * (made by a process that saw more); a malformed token is not (parseSince
   * refuses it).
   */
  private tokenAhead(decoded: SyncToken | undefined): boolean {
    if (!decoded) return false;
    const t = { ...decoded };
    for (const s of EPHEMERAL_STREAMS) t[s] = 0; // in memory: never waited for
    return !tokenCovers(this.notifier.currentToken(), t);
  }

  /**
   * Parses a `since` token and refuses tokens from the future (never a
   * hang). `decoded`: the token already decoded (not modified).
   */
  parseSince(since: string, decoded?: SyncToken): SyncToken {
    const t = decoded ? { ...decoded } : decodeSyncToken(since);
    const current = this.notifier.currentToken();
    // Writer by writer: a token may be ahead of the minimum on the writers it names, not beyond them.
    if (!eventsCovers(current.events, t.events)) throw Errors.invalidParam('Sync token is ahead of the server');
    for (const s of SYNC_STREAMS) {
      if (t[s] <= current[s]) continue;
      if (EPHEMERAL_STREAMS.includes(s)) t[s] = 0; // the in-memory stream restarted: resend its state
      else throw Errors.invalidParam('Sync token is ahead of the server');
    }
    return t;
  }

  async sync(req: SyncRequest): Promise<Json> {
    const workers = this.services.workers;
    // Worker mode: a long-poll makes this process follow the events rows.
    if (workers && req.timeoutMs > 0) await workers.followEvents();
    // Decoded once (undefined when malformed: parseSince refuses it).
    const decoded = req.since !== undefined ? decodeSinceOrUndefined(req.since) : undefined;
    if (workers && needsFreshPositions(req, () => this.tokenAhead(decoded))) await workers.freshPositions();
    if (decoded) await this.notifier.catchUpTo(decoded); // worker mode: a token from a process ahead of us
    const since = req.since !== undefined ? this.parseSince(req.since, decoded) : undefined;
    const s = this.services;
    if (s.presence) await s.presence.userSyncing(req.userId, req.setPresence).catch((e) => s.logger.warn({ err: e }, 'presence userSyncing failed'));
    if (since && s.toDevice && req.deviceId && since.to_device > (this.inboxEmptyThrough.get(`${req.userId}|${req.deviceId}`) ?? 0)) {
      await s.toDevice.deleteUpTo(req.userId, req.deviceId, since.to_device);
      this.noteInboxEmpty(req.userId, req.deviceId, since.to_device);
    }

    const deadline = Date.now() + Math.max(0, req.timeoutMs);
    let from = since;
    for (;;) {
      const to = this.notifier.currentToken();
      if (!from || req.fullState || !sameToken(from, to)) {
        const { body, empty } = await this.compute(req, from, to);
        if (!from || req.fullState || !empty || Date.now() >= deadline || req.signal?.aborted) return body;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || req.signal?.aborted) return this.emptyResponse(req, to);
      // Rooms the filter leaves out of every section cannot change the answer.
      const rooms = selectRooms(await this.memberships.get(req.userId, to.events), req.filter.room).joined;
      const why = await this.notifier.waitForChange(req.userId, rooms, to, remaining, req.signal);
      if (why !== 'change') return this.emptyResponse(req, to);
      // Nothing concerning us in (from, to]: continue from `to`.
      from = to;
    }
  }

  /** The response when nothing happened: only the new token (and key counts). */
  private async emptyResponse(req: SyncRequest, to: SyncToken): Promise<Json> {
    const body: Json = { next_batch: encodeSyncToken(to) };
    await this.addE2ee(body, req, undefined, to);
    return body;
  }

  private async addE2ee(body: Json, req: SyncRequest, since: SyncToken | undefined, to: SyncToken): Promise<boolean> {
    const e2ee = this.services.e2ee;
    if (!e2ee) return false;
    let changed = false;
    const [lists, otk, fallback] = await Promise.all([
      since ? e2ee.getDeviceListChanges(req.userId, since.device_lists, to.device_lists) : undefined,
      req.deviceId ? e2ee.getOneTimeKeyCounts(req.userId, req.deviceId) : undefined,
      req.deviceId ? e2ee.getUnusedFallbackKeyTypes(req.userId, req.deviceId) : undefined,
    ]);
    if (lists) {
      body.device_lists = { changed: lists.changed, left: lists.left };
      changed = lists.changed.length > 0 || lists.left.length > 0;
    }
    if (otk) body.device_one_time_keys_count = otk;
    if (fallback) body.device_unused_fallback_key_types = fallback;
    return changed;
  }

  /** Builds the response for (since, to]. `empty` when nothing concerns the user. */
  async compute(req: SyncRequest, since: SyncToken | undefined, to: SyncToken): Promise<{ body: Json; empty: boolean }> {
    const s = this.services;
    const f = req.filter;
    const userId = req.userId;
    const next: SyncToken = { ...to, events: { ...to.events } };
    const body: Json = {};
    let empty = true;

    // ---- non-room streams (in parallel); a stream that did not move since
    // `since`, or whose section the filter empties, is not read at all.
    const moved = (name: SyncStreamName) => !since || since[name] < to[name];
    const rf = f.room ?? {};
    const globalAccountData = !excludesAll(f.account_data);
    const wantAccountData = globalAccountData || !excludesAll(rf.account_data);
    const ignoredP = s.accountData ? s.accountData.getIgnoredUsers(userId) : Promise.resolve(new Set<string>());
    const accountDataP = !s.accountData
      ? undefined
      : moved('account_data') && wantAccountData
        ? s.accountData.getUpdates(userId, since?.account_data ?? 0, to.account_data)
        : Promise.resolve({ global: [], rooms: new Map<string, ClientEvent[]>() });
    const pushRulesP = s.pushRules && moved('push_rules') && globalAccountData ? s.pushRules.getUpdates(userId, since?.push_rules ?? 0, to.push_rules) : undefined;
    const presenceP = !s.presence
      ? undefined
      : moved('presence') && !excludesAll(f.presence)
        ? s.presence.getUpdates(userId, since?.presence ?? 0, to.presence)
        : Promise.resolve([] as ClientEvent[]);
    const toDeviceP =
      s.toDevice && req.deviceId ? s.toDevice.getMessages(userId, req.deviceId, since?.to_device ?? 0, to.to_device, TO_DEVICE_LIMIT) : undefined;
    const e2eeP = this.addE2ee(body, req, since, to);
    // The rooms start at once (memberships, timelines...): they wait for the
    // ignored users and room account data only where they use them.
    const roomsP = background(this.computeRooms(req, since, to, background(ignoredP), background(Promise.resolve(accountDataP).then((a) => a?.rooms))));

    // A response that fails is not given: the member events the rooms marked
    // as sent to this device (lazy loading) are forgotten, so that later
    // responses send them again (redundant at worst, never missing).
    const failed = async (e: unknown): Promise<never> => {
      await roomsP.catch(() => {});
      this.sentMembers.delete(`${userId}|${req.deviceId ?? ''}`);
      throw e;
    };
    const [, accountData, pushRules, presence, toDevice, listsChanged] = await Promise.all([
      ignoredP,
      accountDataP,
      pushRulesP,
      presenceP,
      toDeviceP,
      e2eeP,
    ]).catch(failed);
    if (listsChanged) empty = false;

    if (accountData || pushRules) {
      const global = [...(accountData?.global ?? [])];
      if (pushRules && !global.some((e) => e.type === 'm.push_rules')) global.push(pushRules);
      const events = limitList(global.filter((e) => eventMatches(f.account_data, e)), f.account_data?.limit);
      body.account_data = { events };
      if (events.length) empty = false;
    }
    if (presence) {
      const events = limitList(presence.filter((e) => eventMatches(f.presence, e)), f.presence?.limit);
      body.presence = { events };
      if (events.length) empty = false;
    }
    if (toDevice) {
      body.to_device = { events: toDevice.events };
      if (toDevice.events.length) {
        empty = false;
        next.to_device = Math.min(to.to_device, Math.max(toDevice.lastPosition, since?.to_device ?? 0));
      } else if ((since?.to_device ?? 0) <= (this.inboxEmptyThrough.get(`${userId}|${req.deviceId}`) ?? 0)) {
        // Nothing at or below `since` (deleted), nothing in (since, to]: nothing at or below `to`.
        this.noteInboxEmpty(userId, req.deviceId!, to.to_device);
      }
    }

    // ---- rooms
    const roomsBody = await roomsP.catch(failed);
    if (roomsBody) {
      body.rooms = roomsBody;
      if (Object.values(roomsBody).some((sec) => Object.keys(sec as Json).length)) empty = false;
    }
    body.next_batch = encodeSyncToken(next);
    return { body, empty };
  }

  private async computeRooms(
    req: SyncRequest,
    since: SyncToken | undefined,
    to: SyncToken,
    ignoredP: Promise<Set<string>>,
    roomAccountDataP: Promise<Map<string, ClientEvent[]> | undefined>,
  ): Promise<Json> {
    const s = this.services;
    const userId = req.userId;
    const f = req.filter;
    const rf = f.room ?? {};
    const initial = !since;
    // Events positions per writer: a row of writer W is in (from, to] iff
    // from(W) < stream_ordering <= to(W) (SyncStore.eventsRangeSql).
    const fromPos: EventsPosition = since?.events ?? { min: 0 };
    const toPos: EventsPosition = to.events;
    const includeLeave = rf.include_leave === true;

    // Membership of the user in every room as of `to`. An incremental sync
    // takes them from the cache; when one moved since `since` (or for an
    // initial or full-state sync, which list left rooms) they are read
    // fresh: forgetting a room is invisible to the cache (membership-cache.ts).
    let mine = initial || req.fullState ? await this.memberships.fresh(userId) : await this.memberships.get(userId, toPos);
    if (!initial && !req.fullState && mine.maxStreamOrdering > fromPos.min) mine = await this.memberships.fresh(userId);
    // Rooms the filter leaves out of every section are not looked at.
    const current = selectRooms(mine, rf).rows;
    let memberships: readonly MembershipAt[] = current;
    const beyond: string[] = [];
    // Above the minimum (its writer may be behind `to`): read as of `to`, writer by writer.
    for (const m of current) if (m.streamOrdering > toPos.min) beyond.push(m.roomId);
    if (beyond.length) {
      const atTo = await this.store.membershipsAt(userId, beyond, toPos);
      memberships = [...current.filter((m) => m.streamOrdering <= toPos.min), ...atTo.values()];
    }

    // What changed in range, and what the membership was at `since`.
    // A membership event in range would be the latest (or be followed by one beyond `to`).
    const anyMoved = current.some((m) => m.streamOrdering > fromPos.min);
    const changes = initial || !anyMoved ? [] : await this.store.membershipChanges(userId, fromPos, toPos);
    const changedRooms = new Set(changes.map((c) => c.roomId));
    const atSince = changedRooms.size ? await this.store.membershipsAt(userId, [...changedRooms], fromPos) : new Map<string, MembershipAt>();

    const plans: RoomPlan[] = [];
    const invites: MembershipAt[] = [];
    const knocks: MembershipAt[] = [];
    const joinIds: string[] = [];
    for (const m of memberships) {
      const changed = changedRooms.has(m.roomId);
      const wasJoined = atSince.get(m.roomId)?.membership === 'join' || (!changed && !initial);
      switch (m.membership) {
        case 'join': {
          joinIds.push(m.roomId);
          const newlyJoined = !initial && changed && !wasJoined;
          const full = initial || req.fullState || newlyJoined;
          plans.push({
            roomId: m.roomId,
            section: 'join',
            from: initial || newlyJoined ? 0 : fromPos,
            to: toPos,
            fullState: full,
            checkVisibility: initial || newlyJoined,
            membershipOrdering: m.streamOrdering,
          });
          break;
        }
        case 'invite':
          if (initial || changed) invites.push(m);
          break;
        case 'knock':
          if (initial || changed) knocks.push(m);
          break;
        case 'leave':
        case 'ban': {
          const wanted = initial || req.fullState ? includeLeave : changed;
          if (!wanted) break;
          const full = initial || req.fullState || !wasJoined;
          plans.push({
            roomId: m.roomId,
            section: 'leave',
            from: full ? 0 : fromPos,
            to: m.streamOrdering,
            fullState: full,
            checkVisibility: full,
            membershipOrdering: m.streamOrdering,
          });
          break;
        }
      }
    }

    // Incremental: which joined rooms have anything new at all.
    const typingFrom = since?.typing ?? 0;
    const typingUpdates = this.typing.getUpdates(joinIds, typingFrom, to.typing);
    const receiptsP = s.receipts && joinIds.length ? s.receipts.getReceiptsForRooms(joinIds, since?.receipts ?? 0, to.receipts, userId) : undefined;
    const withEvents = initial ? undefined : await this.roomsWithEvents(joinIds, fromPos, toPos);
    const [receiptsRead, roomAccountData] = await Promise.all([receiptsP, roomAccountDataP]);
    const receipts = receiptsRead ?? new Map<string, ClientEvent>();
    const activePlans = plans.filter(
      (p) =>
        initial ||
        p.section === 'leave' ||
        p.fullState ||
        withEvents!.has(p.roomId) ||
        typingUpdates.has(p.roomId) ||
        receipts.has(p.roomId) ||
        (roomAccountData?.get(p.roomId)?.length ?? 0) > 0,
    );

    // ---- unread counts and summaries of joined rooms, read while the rest is
    // computed: summaries of rooms sent with their full state now, of the
    // others once their state sections are known (a member event in them).
    const joinPlans = activePlans.filter((p) => p.section === 'join');
    const unreadP = background(
      this.unreadCounts(userId, joinPlans.map((p) => p.roomId), new Map(joinPlans.map((p) => [p.roomId, p.membershipOrdering])), to),
    );
    const fullRooms = joinPlans.filter((p) => p.fullState).map((p) => p.roomId);
    const fullSummariesP = fullRooms.length ? background(this.summaries(fullRooms, userId)) : undefined;

    // ---- timelines (one batched query)
    const tf: RoomEventFilter = rf.timeline ?? {};
    const limit = Math.min(Math.max(tf.limit ?? DEFAULT_TIMELINE_LIMIT, 0), MAX_TIMELINE_LIMIT);
    const ignored = await ignoredP;
    const strippedP = invites.length || knocks.length ? background(Promise.all([this.strippedRooms(invites, ignored, 'invite'), this.strippedRooms(knocks, ignored, 'knock')])) : undefined;
    const sqlFilter: TimelineFilterSql = {
      types: tf.types,
      notTypes: tf.not_types,
      senders: tf.senders,
      notSenders: tf.not_senders,
      containsUrl: tf.contains_url,
      ignoredSenders: ignored.size ? [...ignored] : undefined,
    };
    const timelinePlans = activePlans.filter((p) => roomAllowed(tf, p.roomId) && (rangeMayHaveRows(p.from, p.to) || p.fullState));
    const raw = await this.timelines(
      timelinePlans.filter((p) => rangeMayHaveRows(p.from, p.to)).map((p) => ({ roomId: p.roomId, from: p.from, to: p.to })),
      limit + 1,
      sqlFilter,
      ignored.size ? undefined : timelineFilterKey(tf, sqlFilter),
    );
    const timelines = new Map<string, { events: StoredEvent[]; limited: boolean }>();
    for (const p of activePlans) {
      let events = raw.events.get(p.roomId) ?? [];
      const limited = events.length > limit;
      if (limited) events = events.slice(events.length - limit);
      timelines.set(p.roomId, { events, limited });
    }

    // State events of limited incremental timelines (the gap), read meanwhile.
    // (Rooms checked for visibility are sent with full state: never a gap.)
    const gapPlans = activePlans.filter((p) => !p.fullState && timelines.get(p.roomId)!.limited);
    const gapEventsP = gapPlans.length ? background(this.store.stateEventsInRange(gapPlans.map((p) => p.roomId), fromPos, toPos)) : undefined;

    // ---- state before each timeline, where needed (full state, visibility, lazy loading)
    const lazy = rf.state?.lazy_load_members === true;
    const stateFilter = rf.state;
    const needStart = activePlans.filter((p) => p.fullState || p.checkVisibility || lazy);
    const starts = await this.statesBefore(needStart, timelines);

    /** The state section of a room: event id -> type (before the redundant-member and timeline checks). */
    const stateIdsOf = (p: RoomPlan, gapEvents: readonly StoredEvent[]): Map<string, string> => {
      const tl = timelines.get(p.roomId)!;
      const senders = new Set(tl.events.map((e) => e.event.sender));
      senders.add(userId);
      const ids = new Map<string, string>();
      const start = starts.get(p.roomId);
      const keep = (type: string, stateKey: string) => {
        if (!stateAllowedByKey(stateFilter, type)) return false;
        if (lazy && type === 'm.room.member') return senders.has(stateKey);
        return true;
      };
      if (p.fullState) {
        for (const [key, id] of start ?? []) {
          const [type, stateKey] = splitKey(key);
          if (keep(type, stateKey)) ids.set(id, type);
        }
      } else {
        if (tl.limited) {
          const firstStream = tl.events[0]?.streamOrdering ?? Infinity;
          const latest = new Map<string, string>();
          for (const e of gapEvents) {
            if (e.roomId !== p.roomId || e.streamOrdering >= firstStream) continue;
            latest.set(sk(e.event.type, e.event.state_key!), e.event.event_id);
          }
          for (const [key, id] of latest) {
            const [type, stateKey] = splitKey(key);
            if (keep(type, stateKey) && !(lazy && type === 'm.room.member')) ids.set(id, type);
          }
        }
        if (lazy && start) {
          for (const sender of senders) {
            const id = start.get(sk('m.room.member', sender));
            if (id && stateAllowedByKey(stateFilter, 'm.room.member')) ids.set(id, 'm.room.member');
          }
        }
      }
      return ids;
    };

    // Events of the state sections, each read once: the visibility events
    // together with the state of the rooms sent with full state (visibility
    // only removes timeline events, so only ever fewer lazy-loaded members;
    // the other rooms' state depends on which members this device has).
    const fetched = new Map<string, StoredEvent>();
    const fetchEvents = async (ids: Iterable<string>): Promise<void> => {
      const missing = [...ids].filter((id) => !fetched.has(id));
      if (missing.length) for (const [id, e] of await this.store.getEvents(missing)) fetched.set(id, e);
    };
    const visPlans = needStart.filter((p) => p.checkVisibility);
    const visKeys = [sk('m.room.history_visibility', ''), sk('m.room.member', userId)];
    const likely = new Set<string>();
    for (const p of visPlans) {
      for (const k of visKeys) {
        const id = starts.get(p.roomId)?.get(k);
        if (id) likely.add(id);
      }
    }
    for (const p of needStart) if (p.fullState) for (const id of stateIdsOf(p, []).keys()) likely.add(id);
    // What serialisation reads, started now for these events (a superset of
    // what will be sent; the state events' senders are not known yet): the
    // viewer's transaction ids of the state events. Those of the timeline
    // events, and whether anything relates to them, came with them.
    const serializer = f.event_format === 'federation' ? undefined : s.clientEvents;
    const tlEvents = [...timelines.values()].flatMap((t) => t.events);
    const viewerTxns = serializer && req.deviceId ? req.deviceId : undefined;
    const txnAsked = new Set(viewerTxns ? likely : []);
    const txnIdsP = txnAsked.size ? background(this.txnIds([...txnAsked], userId, viewerTxns!)) : undefined;
    const ownTimeline = viewerTxns ? tlEvents.filter((e) => e.event.sender === userId).map((e) => e.event.event_id) : [];
    const [gapEvents = []] = await Promise.all([gapEventsP, likely.size ? fetchEvents(likely) : undefined]);
    for (const e of gapEvents) if (!fetched.has(e.event.event_id)) fetched.set(e.event.event_id, e);

    if (visPlans.length) {
      const refetch: RoomPlan[] = [];
      for (const p of visPlans) {
        const tl = timelines.get(p.roomId)!;
        const st = starts.get(p.roomId);
        const get = (k: string) => {
          const id = st?.get(k);
          return id ? fetched.get(id) : undefined;
        };
        const visible = filterVisible(
          userId,
          tl.events,
          {
            historyVisibility: String(get(visKeys[0]!)?.event.content?.history_visibility ?? 'shared'),
            membership: String(get(visKeys[1]!)?.event.content?.membership ?? 'leave'),
          },
          p.section === 'join',
        );
        if (visible.length !== tl.events.length) {
          const firstChanged = visible[0]?.event.event_id !== tl.events[0]?.event.event_id;
          timelines.set(p.roomId, { events: visible, limited: tl.limited || visible.length < tl.events.length });
          if (firstChanged) refetch.push(p);
        }
      }
      if (refetch.length) {
        const again = await this.statesBefore(refetch, timelines);
        for (const [r, st] of again) starts.set(r, st);
      }
    }

    // ---- state sections
    const stateIdsByRoom = new Map<string, string[]>();
    const memberStateRooms = new Set<string>();
    const deviceKey = `${userId}|${req.deviceId ?? ''}`;
    if (initial || req.fullState) this.sentMembers.delete(deviceKey);
    for (const p of activePlans) {
      const tl = timelines.get(p.roomId)!;
      const ids = stateIdsOf(p, gapEvents);
      // Lazy loading without redundant members: skip member events this device already has.
      if (lazy && !rf.state?.include_redundant_members) {
        let rooms = this.sentMembers.get(deviceKey);
        if (!rooms) {
          if (this.sentMembers.size > 10_000) this.sentMembers.delete(this.sentMembers.keys().next().value!);
          this.sentMembers.set(deviceKey, (rooms = new Map()));
        }
        let sent = rooms.get(p.roomId);
        if (!sent) rooms.set(p.roomId, (sent = new Set()));
        for (const id of [...ids.keys()]) {
          if (sent.has(id) && !p.fullState) ids.delete(id);
          sent.add(id);
        }
        for (const e of tl.events) if (e.event.type === 'm.room.member') sent.add(e.event.event_id);
      }
      for (const e of tl.events) ids.delete(e.event.event_id);
      stateIdsByRoom.set(p.roomId, [...ids.keys()]);
      for (const type of ids.values()) {
        if (type === 'm.room.member') {
          memberStateRooms.add(p.roomId);
          break;
        }
      }
    }
    // Summaries of the other joined rooms whose membership may have changed.
    const summaryRooms = joinPlans
      .filter((p) => !p.fullState && (memberStateRooms.has(p.roomId) || timelines.get(p.roomId)!.events.some((e) => e.event.type === 'm.room.member')))
      .map((p) => p.roomId);
    const moreSummariesP = summaryRooms.length ? background(this.summaries(summaryRooms, userId)) : undefined;

    // Load the state events not read yet, then serialise everything in one batch.
    const stateIds = [...stateIdsByRoom.values()].flat();
    if (stateIds.length) await fetchEvents(stateIds);
    const stateEvents = fetched;
    const allEvents: StoredEvent[] = [];
    for (const p of activePlans) {
      allEvents.push(...timelines.get(p.roomId)!.events);
      for (const id of stateIdsByRoom.get(p.roomId)!) {
        const e = stateEvents.get(id);
        if (e) allEvents.push(e);
      }
    }
    const serialized = await serializeEvents(this.store, allEvents, {
      userId,
      deviceId: req.deviceId,
      withRoomId: req.withRoomId === true,
      federationFormat: f.event_format === 'federation',
      shared: s.clientEvents,
      // Every timeline event was read with whether anything relates to it (the
      // ids asked for are timeline events: state events get no aggregations).
      mayHaveRelations: async (ids) => ids.some((id) => raw.related.has(id)),
      knownTxnIds: viewerTxns ? await knownTxnIds(txnAsked, txnIdsP, ownTimeline, raw.txns, viewerTxns) : undefined,
    });
    const byId = new Map<string, ClientRoomEvent>();
    allEvents.forEach((e, i) => byId.set(e.event.event_id, serialized[i]!));
    const out = (e: StoredEvent) => projectEventFields(byId.get(e.event.event_id)!, f.event_fields);

    const [fullSummaries, moreSummaries, unread] = await Promise.all([fullSummariesP, moreSummariesP, unreadP]);
    const summaryOf = (roomId: string) => fullSummaries?.get(roomId) ?? moreSummaries?.get(roomId);

    const ephemeralFilter = rf.ephemeral;
    const accountDataFilter = rf.account_data;
    const join: Json = {};
    const leave: Json = {};
    for (const p of activePlans) {
      const tl = timelines.get(p.roomId)!;
      // Before the first event (a room's events all come from its writer, so
      // every one below it has committed), else the end of the range.
      const prevEvents: EventsPosition = tl.events.length
        ? { min: Math.max(0, tl.events[0]!.streamOrdering - 1) }
        : typeof p.to === 'number'
          ? { min: p.to }
          : p.to;
      const room: Json = {
        timeline: {
          events: tl.events.map(out),
          limited: tl.limited,
          prev_batch: encodeSyncToken({ ...to, events: prevEvents }),
        },
        state: {
          events: roomAllowed(stateFilter, p.roomId)
            ? stateIdsByRoom.get(p.roomId)!.map((id) => stateEvents.get(id)).filter((e): e is StoredEvent => !!e && stateEventAllowed(stateFilter, e)).map(out)
            : [],
        },
        account_data: {
          events: roomAllowed(accountDataFilter, p.roomId)
            ? limitList((roomAccountData?.get(p.roomId) ?? []).filter((e) => eventMatches(accountDataFilter, e)), accountDataFilter?.limit)
            : [],
        },
      };
      if (p.section === 'join') {
        const eph: ClientEvent[] = [];
        const typing = typingUpdates.get(p.roomId);
        if (typing) eph.push(typing);
        const receipt = receipts.get(p.roomId);
        if (receipt) eph.push(receipt);
        room.ephemeral = {
          events: roomAllowed(ephemeralFilter, p.roomId) ? limitList(eph.filter((e) => eventMatches(ephemeralFilter, e)), ephemeralFilter?.limit) : [],
        };
        const sum = summaryOf(p.roomId);
        if (sum) {
          room.summary = { 'm.joined_member_count': sum.joined, 'm.invited_member_count': sum.invited, 'm.heroes': sum.heroes };
        } else room.summary = {};
        const u = unread?.get(p.roomId);
        if (u) {
          const threaded = tf.unread_thread_notifications === true;
          let n = u.notification_count;
          let h = u.highlight_count;
          if (threaded) {
            if (Object.keys(u.threads).length) room.unread_thread_notifications = u.threads;
          } else {
            for (const t of Object.values(u.threads)) {
              n += t.notification_count;
              h += t.highlight_count;
            }
          }
          room.unread_notifications = { notification_count: n, highlight_count: h };
        }
        join[p.roomId] = room;
      } else {
        leave[p.roomId] = room;
      }
    }

    const [invite, knock] = strippedP ? await strippedP : [{}, {}];
    return { join, invite, leave, knock };
  }

  /** The viewer's transaction ids of events, in parts of 500 read concurrently. */
  private async txnIds(eventIds: string[], userId: string, deviceId: string): Promise<Map<string, string>> {
    if (eventIds.length <= 500) return this.store.txnIds(eventIds, userId, deviceId);
    const parts: string[][] = [];
    for (let i = 0; i < eventIds.length; i += 500) parts.push(eventIds.slice(i, i + 500));
    const maps = await Promise.all(parts.map((p) => this.store.txnIds(p, userId, deviceId)));
    return new Map(maps.flatMap((m) => [...m]));
  }

  /** Member counts and heroes of rooms (two statements, concurrently). */
  private async summaries(roomIds: string[], userId: string): Promise<Map<string, { joined: number; invited: number; heroes: string[] }>> {
    const out = new Map<string, { joined: number; invited: number; heroes: string[] }>();
    if (!roomIds.length) return out;
    const [counts, heroes] = await Promise.all([this.store.memberCounts(roomIds), this.store.heroes(roomIds, userId)]);
    for (const [roomId, c] of counts) out.set(roomId, { joined: c.joined, invited: c.invited, heroes: heroes.get(roomId) ?? [] });
    return out;
  }

  private noteInboxEmpty(userId: string, deviceId: string, position: number): void {
    const k = `${userId}|${deviceId}`;
    const before = this.inboxEmptyThrough.get(k) ?? 0;
    if (position <= before) return;
    this.inboxEmptyThrough.delete(k);
    if (this.inboxEmptyThrough.size >= 100_000) this.inboxEmptyThrough.delete(this.inboxEmptyThrough.keys().next().value!);
    this.inboxEmptyThrough.set(k, position);
  }

  /**
   * Timelines of the ranges (SyncStore.timelines). A small incremental read
   * is shared with the identical reads of other responses at the same
   * events position (the members of a room woken by its message).
   */
  private async timelines(ranges: TimelineRange[], limit: number, filter: TimelineFilterSql, filterKey?: string): Promise<Timelines> {
    const read = async (): Promise<Timelines> => {
      const extras: TimelineExtras = { related: new Set(), txns: new Map() };
      return { events: await this.store.timelines(ranges, limit, filter, extras), ...extras };
    };
    if (!ranges.length || ranges.length > SHARED_TIMELINE_ROOMS || ranges.some((r) => (typeof r.from === 'number' ? r.from : r.from.min) <= 0)) {
      return read();
    }
    let key = `${limit}\u0000${filterKey ?? JSON.stringify(filter)}`;
    for (const r of ranges) key += `\u0000${JSON.stringify(r.roomId)} ${boundKey(r.from)} ${boundKey(r.to)}`;
    const shared = await this.sharedTimelines.get(key, read);
    // The events (and the set) are shared (never modified); the lists are the caller's.
    return { ...shared, events: new Map([...shared.events].map(([r, list]) => [r, list.slice()])) };
  }

  /** Rooms (of the given ones) with timeline events in (from, to]: from the window of recent events, else the database. */
  private async roomsWithEvents(rooms: string[], from: EventsPosition, to: EventsPosition): Promise<Set<string>> {
    return (await this.recent.roomsWithEvents(rooms, from, to)) ?? (await this.store.roomsWithEvents(rooms, from, to));
  }

  /**
   * Unread counts of the joined rooms as of `to`. The push service may keep
   * them against the positions of `to` and bring them forward with the new
   * events of each room (found in the window of recent events). With events
   * written by several writers and `to` ahead of their minimum on some, each
   * room is counted at its newest event `to` covers above the minimum (from
   * the window: a room's events all come from its writer, so every event of
   * the room at or below it has committed), else at the minimum; when the
   * window cannot tell, they are counted afresh.
   */
  private async unreadCounts(
    userId: string,
    roomIds: string[],
    membershipAt: ReadonlyMap<string, number>,
    to: SyncToken,
  ): Promise<Map<string, UnreadCounts> | undefined> {
    const push = this.services.push;
    if (!push || !roomIds.length) return undefined;
    if (push.getUnreadCountsForRooms) {
      const top = to.events;
      const single = !hasWriterParts(top);
      const roomEvents = single ? undefined : await this.recent.newestCovered(roomIds, top);
      return push.getUnreadCountsForRooms(userId, roomIds, membershipAt, {
        receipts: to.receipts,
        events: single || roomEvents ? top.min : undefined,
        ...(roomEvents ? { roomEvents } : {}),
        roomsWithEvents: (rooms, from) => this.roomsWithEvents(rooms, { min: from }, top),
      });
    }
    const all = await Promise.all(roomIds.map((r) => push.getUnreadCounts(userId, r)));
    return new Map(roomIds.map((r, i) => [r, all[i]!]));
  }

  /**
   * State (key -> event id) before the first timeline event of each room:
   * the state after that event with its own key reverted to what it
   * replaced; for an empty timeline, the state after the last event <= to.
   */
  private async statesBefore(plans: RoomPlan[], timelines: Map<string, { events: StoredEvent[] }>): Promise<Map<string, StateMap>> {
    const out = new Map<string, StateMap>();
    if (!plans.length) return out;
    const anchor = new Map<string, { eventId: string; revert?: StoredEvent }>();
    const empty: Array<{ roomId: string; to: EventsBound }> = [];
    for (const p of plans) {
      const first = timelines.get(p.roomId)?.events[0];
      if (first) anchor.set(p.roomId, { eventId: first.event.event_id, revert: first });
      else empty.push({ roomId: p.roomId, to: p.to });
    }
    if (empty.length) for (const [r, id] of await this.store.lastEventIds(empty)) anchor.set(r, { eventId: id });
    const after = await this.states.statesAfter([...anchor.values()].map((a) => a.eventId));
    for (const [roomId, a] of anchor) {
      // Shared with the cache: copied only when the anchor's own key is reverted.
      let st: StateMap = after.get(a.eventId) ?? new Map<string, string>();
      const ev = a.revert?.event;
      if (ev && typeof ev.state_key === 'string') {
        const key = sk(ev.type, ev.state_key);
        const replaced = a.revert!.unsignedExtra?.replaces_state;
        if (st.get(key) === ev.event_id) {
          const copy = new Map(st);
          if (replaced) copy.set(key, replaced);
          else copy.delete(key);
          st = copy;
        }
      }
      out.set(roomId, st);
    }
    return out;
  }

  /** invite_state / knock_state: stripped state at the membership event, plus the event itself. */
  private async strippedRooms(ms: MembershipAt[], ignored: Set<string>, kind: 'invite' | 'knock'): Promise<Json> {
    const out: Json = {};
    if (!ms.length) return out;
    const [memberEvents, states] = await Promise.all([this.store.getEvents(ms.map((m) => m.eventId)), this.states.statesAfter(ms.map((m) => m.eventId))]);
    const wanted = new Map<string, string[]>();
    for (const m of ms) {
      const st = states.get(m.eventId);
      wanted.set(m.roomId, STRIPPED_TYPES.map((t) => st?.get(sk(t, ''))).filter((x): x is string => !!x));
    }
    const stateEvents = await this.store.getEvents([...wanted.values()].flat());
    for (const m of ms) {
      const me = memberEvents.get(m.eventId);
      if (!me) continue;
      if (kind === 'invite' && ignored.has(me.event.sender)) continue;
      const fromUnsigned = (me.event.unsigned as Json | undefined)?.invite_room_state;
      const events: Json[] =
        Array.isArray(fromUnsigned) && !wanted.get(m.roomId)!.length
          ? fromUnsigned
          : wanted.get(m.roomId)!.map((id) => stateEvents.get(id)).filter((e): e is StoredEvent => !!e).map(strippedState);
      const self = { ...strippedState(me), event_id: me.event.event_id, origin_server_ts: me.event.origin_server_ts };
      out[m.roomId] = kind === 'invite' ? { invite_state: { events: [...events, self] } } : { knock_state: { events: [...events, self] } };
    }
    return out;
  }
}

/**
 * A read started ahead of where its result is awaited: when the response
 * fails first, its own failure is not an unhandled rejection (the caller
 * still sees it when awaiting).
 */
function background<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * The viewer's transaction ids known before serialisation: those read for
 * `asked` (state events), and those of the viewer's own timeline events from
 * what their read said (sent from the viewer's device with a transaction id).
 */
async function knownTxnIds(
  asked: ReadonlySet<string>,
  read: Promise<Map<string, string>> | undefined,
  ownTimeline: readonly string[],
  txns: Timelines['txns'],
  deviceId: string,
): Promise<KnownTxnIds> {
  const ids = new Map(read ? await read : []);
  for (const id of ownTimeline) {
    const t = txns.get(id);
    if (t && t.deviceId === deviceId) ids.set(id, t.txnId);
  }
  return { asked: new Set([...asked, ...ownTimeline]), ids };
}

/** A range bound in a shared read's key. */
function boundKey(b: EventsBound): string {
  if (typeof b === 'number') return String(b);
  return b.writers ? JSON.stringify(b) : `m${b.min}`;
}

const timelineFilterKeys = new WeakMap<RoomEventFilter, string>();

/**
 * The key of a timeline filter without ignored users (derived from `tf`
 * alone): kept with a frozen, shared filter (a stored filter, parsed once
 * in api/client/sync.ts), else made again.
 */
function timelineFilterKey(tf: RoomEventFilter, sql: TimelineFilterSql): string {
  let key = timelineFilterKeys.get(tf);
  if (key === undefined) {
    key = JSON.stringify(sql);
    if (Object.isFrozen(tf)) timelineFilterKeys.set(tf, key);
  }
  return key;
}

function sameToken(a: SyncToken, b: SyncToken): boolean {
  return sameEventsPosition(a.events, b.events) && SYNC_STREAMS.every((s) => a[s] === b[s]);
}

/** Whether (from, to] may hold rows (false when `to` covers nothing beyond `from` on any writer). */
function rangeMayHaveRows(from: EventsBound, to: EventsBound): boolean {
  const f = typeof from === 'number' ? { min: from } : from;
  const t = typeof to === 'number' ? { min: to } : to;
  return !eventsCovers(f, t);
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** State filter checks that only need the type (senders etc. are checked on the events). */
function stateAllowedByKey(f: RoomEventFilter | undefined, type: string): boolean {
  if (!f) return true;
  return eventMatches({ types: f.types, not_types: f.not_types }, { type });
}

/** Sender and url checks of the state filter (types were applied on the keys). */
function stateEventAllowed(f: RoomEventFilter | undefined, e: StoredEvent): boolean {
  if (!f) return true;
  return eventMatches({ senders: f.senders, not_senders: f.not_senders, contains_url: f.contains_url }, e.event);
}

/** Whether a filter keeps no event at all (then its source need not be read). */
function excludesAll(f: { types?: string[]; not_types?: string[]; senders?: string[]; limit?: number } | undefined): boolean {
  if (!f) return false;
  return f.limit === 0 || f.types?.length === 0 || f.senders?.length === 0 || f.not_types?.includes('*') === true;
}

function limitList<T>(xs: T[], limit: number | undefined): T[] {
  return limit !== undefined && xs.length > limit ? xs.slice(xs.length - limit) : xs;
}
