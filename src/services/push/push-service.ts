/**
 * Push evaluation when events are persisted, unread counts for /sync and
 * GET /notifications.
 *
 * The event persister asks `prepareBatch` for the push rows of a batch of
 * events before it commits them, and writes them in the same transaction
 * (one durable commit; an event never commits without its rows). Each
 * event is evaluated for every local joined member except the sender: the
 * outcome of a member with the server-default rules who is not mentioned
 * (the *default* outcome, the same for all of them) is stored once per
 * notifying event; members whose outcome differs (mentions, display name or
 * localpart, their own rules, ignoring the sender, invites) get an
 * *exception* row. Unread counts and notifications are defaults ⊕
 * exceptions: a default row counts for a user who joined before the event,
 * did not send it and has no exception for it. Counts start after the
 * user's latest read receipt (m.read or m.read.private, whichever is
 * further), per thread where the user sent threaded receipts.
 */
import type { Logger } from 'pino';
import {
  DefaultRulesEvaluator,
  evaluate,
  memberBodyWords,
  MemberWordIndex,
  sameOutcome,
  type EvalContext,
  type EvalResult,
  type MemberBodyWords,
  type Ruleset,
} from '../../matrix/push-rules.js';
import { notificationPowerLevel, userPowerLevel } from '../../matrix/power-levels.js';
import { getRoomVersion } from '../../matrix/room-versions.js';
import { stateKey, type RoomEvent, type StateMap } from '../../matrix/types.js';
import type { PushRow, PushStore, RoomPushRows, UnreadRange } from '../../storage/live/push-store.js';
import type { RoomQueries } from '../../storage/live/room-queries.js';
import type { ExtraRows } from '../../storage/rooms/store.js';
import type { PushSource, UnreadCounts, UnreadCountsAt } from '../../streams/sync-sources.js';
import type { AccountDataService } from '../account-data/account-data-service.js';
import type { ReceiptsService } from '../receipts/receipts-service.js';
import type { PushRulesService } from './push-rules-service.js';

/** An event of a batch about to be persisted. */
export interface PersistedEventLike {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  content: Record<string, any>;
  state_key?: string;
  origin_server_ts?: number;
  [k: string]: unknown;
}

/** What push evaluation needs of a room: its joined members and the state that decides power levels. */
interface RoomPushInfo {
  /** Every joined member (local and remote) -> room display name. */
  joined: Map<string, string | null>;
  /** The local ones among them (derived from `joined`, rebuilt after a membership change). */
  local?: Array<[string, string | null]>;
  /** The local members split by how they are evaluated (rebuilt after a membership, rules or ignore change). */
  split?: RecipientSplit;
  state: StateMap;
  roomVersion?: string;
}

/**
 * A room's local members, split for evaluation. `plain`: those whose ruleset
 * is exactly the server defaults and who ignore nobody, as most are, indexed
 * by the words their body rules look for; an event that none of their
 * user-dependent rules can match (`mayDiffer`) gives them the default
 * outcome without evaluating them, and without visiting each of them when
 * only the body rules can match (`membersThatMayDiffer`). `others`: evaluated
 * in full. Valid while the push rules and ignored users of this process have
 * not changed since (`rulesVersion`, `ignoredVersion`).
 */
interface RecipientSplit {
  rulesVersion: number;
  ignoredVersion: number;
  plain: MemberWordIndex<PlainMember>;
  others: Array<[string, string | null]>;
}

interface PlainMember {
  userId: string;
  displayName: string | null;
  ruleset: Ruleset;
  words: MemberBodyWords;
}

const NOTHING: EvalResult = { actions: [], notify: false, highlight: false };

export class PushService implements PushSource {
  /**
   * Per-room members and power levels as of the last evaluated event. Kept
   * up to date from the events this process persists; dropped when a batch
   * does not commit, and when another process persists an event of the room.
   */
  private readonly roomCache = new Map<string, RoomPushInfo>();
  private readonly localSuffix: string;
  /** The store's write function, handed to the event persister with the rows. */
  private readonly writeRows = (tx: Parameters<ExtraRows['write']>[0], rows: PushRow[]) => this.store.insertPushRows(tx, rows);

  constructor(
    private readonly store: PushStore,
    private readonly rooms: RoomQueries,
    private readonly rules: PushRulesService,
    private readonly receipts: ReceiptsService,
    private readonly accountData: AccountDataService,
    private readonly serverName: string,
    private readonly logger: Logger,
  ) {
    this.localSuffix = `:${serverName}`;
  }

  private async roomInfo(roomId: string): Promise<RoomPushInfo> {
    const cached = this.roomCache.get(roomId);
    if (cached) return cached;
    const [members, pl, create, roomVersion] = await Promise.all([
      this.store.joinedMembers(roomId),
      this.rooms.currentState(roomId, 'm.room.power_levels'),
      this.rooms.currentState(roomId, 'm.room.create'),
      this.rooms.roomVersion(roomId),
    ]);
    const state: StateMap = new Map();
    if (pl) state.set(stateKey('m.room.power_levels', ''), { type: 'm.room.power_levels', state_key: '', content: pl.content, sender: pl.sender } as RoomEvent);
    if (create) state.set(stateKey('m.room.create', ''), { type: 'm.room.create', state_key: '', content: create.content, sender: create.sender } as RoomEvent);
    const info: RoomPushInfo = { joined: new Map(members.map((m) => [m.userId, m.displayName])), state, roomVersion };
    if (this.roomCache.size > 5000) this.roomCache.clear();
    this.roomCache.set(roomId, info);
    return info;
  }

  /** Applies a state event that matters for push (membership, power levels, create) to the room's info. */
  private apply(info: RoomPushInfo, event: PersistedEventLike): void {
    if (typeof event.state_key !== 'string') return;
    if (event.type === 'm.room.member') {
      info.local = undefined;
      info.split = undefined;
      if (event.content?.membership === 'join') {
        info.joined.set(event.state_key, typeof event.content.displayname === 'string' ? event.content.displayname : null);
      } else {
        info.joined.delete(event.state_key);
      }
    } else if ((event.type === 'm.room.power_levels' || event.type === 'm.room.create') && event.state_key === '') {
      info.state.set(stateKey(event.type, ''), { type: event.type, state_key: '', content: event.content ?? {}, sender: event.sender } as RoomEvent);
      if (event.type === 'm.room.create') info.roomVersion = typeof event.content?.room_version === 'string' ? event.content.room_version : '1';
    }
  }

  /** The thread an event belongs to: the root of an m.thread relation (one hop further at most), else "main". */
  private threadOf(event: PersistedEventLike, batch: ReadonlyMap<string, PersistedEventLike>): string | Promise<string> {
    const rel = event.content?.['m.relates_to'];
    if (!rel || typeof rel !== 'object' || typeof rel.event_id !== 'string') return 'main';
    if (rel.rel_type === 'm.thread') return rel.event_id;
    // e.g. a reaction to or an edit of a threaded message (perhaps of the same batch).
    const inBatch = batch.get(rel.event_id);
    if (inBatch) {
      const prel = inBatch.content?.['m.relates_to'];
      return prel && typeof prel === 'object' && prel.rel_type === 'm.thread' && typeof prel.event_id === 'string' ? prel.event_id : 'main';
    }
    return this.rooms.getEvent(rel.event_id).then((parent) => (parent?.relType === 'm.thread' && parent.relatesToId ? parent.relatesToId : 'main'));
  }

  /** The room's joined local members (kept until a membership change drops them). */
  private localMembers(info: RoomPushInfo): Array<[string, string | null]> {
    return (info.local ??= [...info.joined].filter(([userId]) => userId.endsWith(this.localSuffix)));
  }

  /** The room's local members split for evaluation (RecipientSplit), rebuilt when stale. */
  private recipientSplit(info: RoomPushInfo): RecipientSplit | Promise<RecipientSplit> {
    const split = info.split;
    if (split && split.rulesVersion === this.rules.version && split.ignoredVersion === this.accountData.ignoredVersion) return split;
    return this.buildSplit(info);
  }

  private async buildSplit(info: RoomPushInfo): Promise<RecipientSplit> {
    // Versions first: a change during the reads below makes the next event rebuild.
    const rulesVersion = this.rules.version;
    const ignoredVersion = this.accountData.ignoredVersion;
    const plain: PlainMember[] = [];
    const others: RecipientSplit['others'] = [];
    const local = this.localMembers(info);
    for (const [userId, displayName] of local) {
      const ignored = this.accountData.cachedIgnoredUsers(userId) ?? (await this.accountData.getIgnoredUsers(userId));
      const ruleset = this.rules.cachedRuleset(userId) ?? (await this.rules.getRuleset(userId));
      if (ignored.size === 0 && this.rules.isDefaultRuleset(ruleset)) {
        plain.push({ userId, displayName, ruleset, words: memberBodyWords(ruleset, displayName) });
      } else {
        others.push([userId, displayName]);
      }
    }
    const split: RecipientSplit = { rulesVersion, ignoredVersion, plain: new MemberWordIndex(plain), others };
    // Kept only if the membership did not change during the reads (apply() drops `local`).
    if (info.local === local) info.split = split;
    return split;
  }

  /**
   * The push rows of a batch of one room's events, evaluated against the
   * room's members and power levels at each event; the event persister
   * writes them in the events' transaction. Throws if evaluation fails (the
   * batch then fails: no event without its push rows).
   */
  async prepareBatch(roomId: string, events: ReadonlyArray<{ event: PersistedEventLike; streamOrdering: number }>): Promise<ExtraRows<PushRow>[] | undefined> {
    const info = await this.roomInfo(roomId);
    const byId = new Map(events.map((e) => [e.event.event_id, e.event]));
    const rows: PushRow[] = [];
    const now = Date.now();
    for (const { event, streamOrdering } of events) {
      try {
        const pending = this.evaluateEvent(info, roomId, event, streamOrdering, byId, now, rows);
        if (pending) await pending;
      } catch (e) {
        // A fault in evaluating one event (a bug, an odd rule) costs its
        // notifications, never the message itself.
        this.logger.error({ err: e, roomId, eventId: event.event_id }, 'push evaluation failed; event persisted without push actions');
      }
      this.apply(info, event);
    }
    return rows.length ? [{ write: this.writeRows, rows }] : undefined;
  }

  /** A prepared batch did not commit: the cached room info ran ahead of the database. */
  batchAborted(roomId: string): void {
    this.roomCache.delete(roomId);
  }

  /** Another process persisted an event of the room: the cached room info may be behind. */
  roomWrittenElsewhere(roomId: string): void {
    this.roomCache.delete(roomId);
  }

  /** Adds the push rows of one event to `rows`; returns a promise only when it had to wait for a read. */
  private evaluateEvent(
    info: RoomPushInfo,
    roomId: string,
    event: PersistedEventLike,
    streamOrdering: number,
    batch: ReadonlyMap<string, PersistedEventLike>,
    now: number,
    rows: PushRow[],
  ): Promise<void> | undefined {
    const local = this.localMembers(info);
    // A local user invited to the room gets .m.rule.invite_for_me.
    const invited =
      event.type === 'm.room.member' && event.content?.membership === 'invite' && typeof event.state_key === 'string' &&
      event.state_key.endsWith(this.localSuffix) && event.state_key !== event.sender && !info.joined.has(event.state_key)
        ? event.state_key
        : undefined;
    if (invited === undefined && (!local.length || (local.length === 1 && local[0]![0] === event.sender))) return undefined;
    const version = info.roomVersion ? getRoomVersion(info.roomVersion) : undefined;
    const notificationLevel = (key: string) => notificationPowerLevel(info.state, key);
    // One context, its user fields set per recipient (evaluation does not keep it).
    const ctx: EvalContext = { userId: '', memberCount: info.joined.size, senderPowerLevel: userPowerLevel(info.state, event.sender, version), notificationLevel };
    // Members with the default rules share the user-independent part of the evaluation.
    const defaults = new DefaultRulesEvaluator(event);
    const outcome = defaults.defaultOutcome(ctx);
    const thread = this.threadOf(event, batch);
    const split = this.recipientSplit(info);
    if (typeof thread !== 'string' || split instanceof Promise) {
      return Promise.all([thread, split]).then(([threadId, s]) => this.evaluateFor(s, invited, defaults, outcome, ctx, event, roomId, streamOrdering, threadId, now, rows));
    }
    return this.evaluateFor(split, invited, defaults, outcome, ctx, event, roomId, streamOrdering, thread, now, rows);
  }

  private evaluateFor(
    split: RecipientSplit,
    invited: string | undefined,
    defaults: DefaultRulesEvaluator,
    outcome: EvalResult,
    ctx: EvalContext,
    event: PersistedEventLike,
    roomId: string,
    streamOrdering: number,
    threadId: string,
    now: number,
    rows: PushRow[],
  ): Promise<void> | undefined {
    const base = { eventId: event.event_id, roomId, streamOrdering, threadId, receivedTs: now };
    if (outcome.notify) rows.push({ kind: 'default', ...base, sender: event.sender, highlight: outcome.highlight, actions: outcome.actions });
    const exception = (userId: string, result: EvalResult) => {
      if (sameOutcome(result, outcome)) return;
      rows.push({ kind: 'exception', ...base, userId, notif: result.notify, highlight: result.notify && result.highlight, actions: result.notify ? result.actions : [] });
    };
    // Most members get the default outcome (no row): only those whose rules may match otherwise are evaluated.
    for (const m of defaults.membersThatMayDiffer(ctx, split.plain)) {
      if (m.userId === event.sender) continue; // never notified of their own events
      ctx.userId = m.userId;
      ctx.displayName = m.displayName ?? undefined;
      exception(m.userId, defaults.evaluateDefaultMember(m.ruleset, ctx));
    }
    const others = invited === undefined ? split.others : [...split.others, [invited, null] as [string, null]];
    for (let i = 0; i < others.length; i++) {
      const [userId, displayName] = others[i]!;
      if (userId === event.sender) continue; // never notified of their own events
      // Cached nearly always: no await per recipient.
      const ignored = this.accountData.cachedIgnoredUsers(userId);
      const ruleset = this.rules.cachedRuleset(userId);
      if (!ignored || !ruleset) return this.evaluateOthersSlowly(others.slice(i), defaults, ctx, event, exception);
      exception(userId, this.evaluateOther(ignored, ruleset, userId, displayName, defaults, ctx, event));
    }
    return undefined;
  }

  private async evaluateOthersSlowly(
    others: Array<[string, string | null]>,
    defaults: DefaultRulesEvaluator,
    ctx: EvalContext,
    event: PersistedEventLike,
    exception: (userId: string, result: EvalResult) => void,
  ): Promise<void> {
    for (const [userId, displayName] of others) {
      if (userId === event.sender) continue;
      const ignored = this.accountData.cachedIgnoredUsers(userId) ?? (await this.accountData.getIgnoredUsers(userId));
      // The rules of a member who ignores the sender do not matter.
      const ruleset = ignored.has(event.sender) ? undefined : (this.rules.cachedRuleset(userId) ?? (await this.rules.getRuleset(userId)));
      exception(userId, ruleset ? this.evaluateOther(ignored, ruleset, userId, displayName, defaults, ctx, event) : NOTHING);
    }
  }

  private evaluateOther(
    ignored: Set<string>,
    ruleset: Ruleset,
    userId: string,
    displayName: string | null,
    defaults: DefaultRulesEvaluator,
    ctx: EvalContext,
    event: PersistedEventLike,
  ): EvalResult {
    if (ignored.has(event.sender)) return NOTHING;
    ctx.userId = userId;
    ctx.displayName = displayName ?? undefined;
    return this.rules.isDefaultRuleset(ruleset) ? defaults.evaluateDefaultMember(ruleset, ctx) : evaluate(ruleset, event, ctx);
  }

  async getUnreadCounts(userId: string, roomId: string): Promise<UnreadCounts> {
    return (await this.getUnreadCountsForRooms(userId, [roomId])).get(roomId)!;
  }

  /**
   * Where the user's current run of membership in each room began (the
   * first join after their last leave), keyed by the stream ordering of the
   * membership event it was computed at: any change needs a new membership
   * event, so a different position means "read again".
   */
  private readonly joinCache = new Map<string, Map<string, { at: number; since: number }>>();

  private async joinedSinceCached(userId: string, roomIds: string[], membershipAt?: ReadonlyMap<string, number>): Promise<Map<string, number>> {
    if (!membershipAt) return this.store.joinedSince(userId, roomIds);
    let mine = this.joinCache.get(userId);
    const out = new Map<string, number>();
    const missing: string[] = [];
    for (const roomId of roomIds) {
      const hit = mine?.get(roomId);
      if (hit && hit.at === membershipAt.get(roomId)) out.set(roomId, hit.since);
      else missing.push(roomId);
    }
    if (!missing.length) return out;
    const read = await this.store.joinedSince(userId, missing);
    if (!mine) {
      if (this.joinCache.size >= 20_000) this.joinCache.clear();
      this.joinCache.set(userId, (mine = new Map()));
    }
    for (const roomId of missing) {
      const since = read.get(roomId);
      if (since === undefined) continue;
      out.set(roomId, since);
      const at = membershipAt.get(roomId);
      // A join point past the caller's membership event came from a newer
      // one (a race with a membership change): use it, do not keep it.
      if (at !== undefined && since <= at) mine.set(roomId, { at, since });
    }
    return out;
  }

  /**
   * Unread counts per room (and thread). Without `at` every count is read
   * from the database. With `at` (a /sync response: the events and receipts
   * positions it covers, everything at or below them committed) counts are
   * kept per user and room, each exact for the rows at or below its events
   * position under one counting range (join point, unthreaded receipt,
   * threaded receipts): push rows at or below a committed position never
   * change, and a new receipt or membership changes the range, which reads
   * again. A room whose counts are behind `at.events` is brought forward
   * with the push rows of its events in between, read once for every
   * member asking for the same range (the members of a room woken by its
   * message); rooms without events in between (`at.roomsWithEvents`, from
   * the window of recent events) just move forward.
   */
  async getUnreadCountsForRooms(
    userId: string,
    roomIds: string[],
    membershipAt?: ReadonlyMap<string, number>,
    at?: UnreadCountsAt,
  ): Promise<Map<string, UnreadCounts>> {
    const out = new Map<string, UnreadCounts>();
    for (const roomId of roomIds) out.set(roomId, { notification_count: 0, highlight_count: 0, threads: {} });
    if (!roomIds.length) return out;
    const [receipts, joinedSince] = await Promise.all([
      this.receipts.readReceipts(userId, roomIds, at?.receipts),
      this.joinedSinceCached(userId, roomIds, membershipAt),
    ]);
    const unthreaded = new Map<string, number>();
    const threaded = new Map<string, Map<string, number>>();
    for (const r of receipts) {
      if (!r.threadId) {
        unthreaded.set(r.roomId, Math.max(unthreaded.get(r.roomId) ?? 0, r.eventStreamOrdering));
      } else {
        let m = threaded.get(r.roomId);
        if (!m) threaded.set(r.roomId, (m = new Map()));
        m.set(r.threadId, Math.max(m.get(r.threadId) ?? 0, r.eventStreamOrdering));
      }
    }
    // Each room counts after the later of its unthreaded receipt and the
    // user's join; threads with a threaded receipt further on, after it.
    const ranges: UnreadRange[] = [];
    for (const roomId of out.keys()) {
      const since = joinedSince.get(roomId);
      if (since === undefined) continue; // not joined: nothing counts
      ranges.push({ roomId, after: Math.max(since, unthreaded.get(roomId) ?? 0), threads: [...(threaded.get(roomId) ?? [])] });
    }
    // notification/highlight_count: the main timeline (and unthreaded
    // relations); `threads`: every other thread. /sync adds the threads in
    // when the client did not ask for unread_thread_notifications.
    const add = (roomId: string, threadId: string, notif: number, highlight: number) => {
      const counts = out.get(roomId);
      if (!counts) return;
      const bucket = threadId === 'main' ? counts : (counts.threads[threadId] ??= { notification_count: 0, highlight_count: 0 });
      bucket.notification_count += notif;
      bucket.highlight_count += highlight;
    };
    if (!at || at.events === undefined) {
      for (const c of await this.store.countUnread(userId, ranges)) add(c.roomId, c.threadId, c.notif, c.highlight);
      return out;
    }
    const events = at.events;
    const roomEvents = at.roomEvents;
    const counted = await this.cachedCounts(userId, ranges, roomEvents ? (roomId) => Math.max(events, roomEvents.get(roomId) ?? events) : () => events, at.roomsWithEvents);
    for (const [roomId, entry] of counted) for (const c of entry.counts) add(roomId, c.threadId, c.notif, c.highlight);
    return out;
  }

  /** Per user and room: counts exact at `events` for the counting range `rangeKey`. */
  private readonly countsCache = new Map<string, Map<string, CountsEntry>>();
  /** Push rows of a room in a range, shared by the members asking at once. */
  private readonly rowsMemo = new Map<string, Promise<RoomPushRows>>();

  private async cachedCounts(
    userId: string,
    ranges: UnreadRange[],
    /** Per room: the events position to count at (every event of the room at or below it has committed). */
    eventsOf: (roomId: string) => number,
    roomsWithEvents: UnreadCountsAt['roomsWithEvents'],
  ): Promise<Map<string, CountsEntry>> {
    const out = new Map<string, CountsEntry>();
    let mine = this.countsCache.get(userId);
    const full: UnreadRange[] = [];
    const behind: Array<{ range: UnreadRange; entry: CountsEntry; since: number }> = [];
    for (const range of ranges) {
      const entry = mine?.get(range.roomId);
      const events = eventsOf(range.roomId);
      if (!entry || entry.rangeKey !== rangeKey(range) || entry.events > events) full.push(range);
      else if (entry.events === events) out.set(range.roomId, entry);
      else behind.push({ range, entry, since: entry.events });
    }
    if (behind.length) {
      const from = Math.min(...behind.map((b) => b.since));
      const moved = await roomsWithEvents?.(behind.map((b) => b.range.roomId), from).catch(() => undefined);
      await Promise.all(
        behind.map(async ({ range, entry, since }) => {
          if (!moved) {
            full.push(range); // one read for all of them rather than one per room
            return;
          }
          const events = eventsOf(range.roomId);
          if (!moved.has(range.roomId)) {
            entry.events = events; // nothing new in the room: the same counts hold further (the entry is this user's alone)
            out.set(range.roomId, entry);
            return;
          }
          const rows = await this.pushRowsShared(range.roomId, since, events);
          if (!rows.complete) {
            full.push(range);
            return;
          }
          out.set(range.roomId, { ...entry, events, counts: advanceCounts(entry.counts, rows, userId, range) });
        }),
      );
    }
    if (full.length) {
      const byRoom = new Map<string, CountsEntry>();
      const upTo = new Map<string, number>();
      for (const range of full) {
        const events = eventsOf(range.roomId);
        upTo.set(range.roomId, events);
        byRoom.set(range.roomId, { events, rangeKey: rangeKey(range), counts: [] });
      }
      const bounds = new Set(upTo.values());
      for (const c of await this.store.countUnread(userId, full, bounds.size === 1 ? bounds.values().next().value! : upTo)) {
        byRoom.get(c.roomId)?.counts.push({ threadId: c.threadId, notif: c.notif, highlight: c.highlight });
      }
      for (const [roomId, entry] of byRoom) out.set(roomId, entry);
    }
    // Keep what was computed (never replacing counts of a later position).
    mine = this.countsCache.get(userId);
    if (!mine) {
      if (this.countsCache.size >= COUNTS_CACHE_USERS) this.countsCache.delete(this.countsCache.keys().next().value!);
      this.countsCache.set(userId, (mine = new Map()));
    }
    for (const [roomId, entry] of out) {
      const prev = mine.get(roomId);
      if (!prev || prev.events <= entry.events) mine.set(roomId, entry);
    }
    return out;
  }

  private pushRowsShared(roomId: string, after: number, upTo: number): Promise<RoomPushRows> {
    const key = `${roomId}\u0000${after}\u0000${upTo}`;
    let p = this.rowsMemo.get(key);
    if (!p) {
      if (this.rowsMemo.size >= 256) this.rowsMemo.clear();
      p = this.store.pushRowsInRange(roomId, after, upTo, PUSH_ROWS_LIMIT);
      this.rowsMemo.set(key, p);
      // Dropped once read (callers woken together have asked by then); a failed read is not remembered either.
      const drop = () => {
        if (this.rowsMemo.get(key) === p) this.rowsMemo.delete(key);
      };
      p.then(() => setTimeout(drop, 1000).unref(), drop);
    }
    return p;
  }

  /** GET /notifications: most recent first; `from` is the token returned as next_token. */
  async getNotifications(userId: string, from: number | undefined, limit: number, onlyHighlight: boolean) {
    const rows = await this.store.listNotifications(userId, await this.store.joinedSince(userId), from, limit, onlyHighlight);
    const events = await this.rooms.getEventJson(rows.map((r) => r.eventId));
    const roomIds = [...new Set(rows.map((r) => r.roomId))];
    const readUpTo = new Map<string, { base: number; threads: Map<string, number> }>();
    for (const r of await this.receipts.readReceipts(userId, roomIds)) {
      let e = readUpTo.get(r.roomId);
      if (!e) readUpTo.set(r.roomId, (e = { base: 0, threads: new Map() }));
      if (!r.threadId) e.base = Math.max(e.base, r.eventStreamOrdering);
      else e.threads.set(r.threadId, Math.max(e.threads.get(r.threadId) ?? 0, r.eventStreamOrdering));
    }
    const notifications = [];
    for (const r of rows) {
      const ev = events.get(r.eventId);
      if (!ev) continue;
      const read = readUpTo.get(r.roomId);
      const isRead = !!read && (r.streamOrdering <= read.base || r.streamOrdering <= (read.threads.get(r.threadId) ?? 0));
      notifications.push({
        actions: r.actions,
        event: clientEvent({ ...ev.json, event_id: r.eventId }, ev.unsignedExtra),
        // profile_tag is an optional string in the spec (never null): omitted, as we have no pusher profile tags here.
        read: isRead,
        room_id: r.roomId,
        ts: r.receivedTs,
      });
    }
    const next = rows.length === limit && rows.length ? String(rows[rows.length - 1]!.streamOrdering) : undefined;
    return next ? { notifications, next_token: next } : { notifications };
  }
}

/** A user's counts in a room, exact for the push rows at or below `events` under the counting range `rangeKey`. */
interface CountsEntry {
  events: number;
  rangeKey: string;
  counts: Array<{ threadId: string; notif: number; highlight: number }>;
}

const COUNTS_CACHE_USERS = 20_000;
/** Push rows read to bring counts forward; a room with more in between is counted afresh. */
const PUSH_ROWS_LIMIT = 500;

/** What decides which rows of a room count (UnreadRange without the room): threads read no further than `after` do not matter. */
function rangeKey(r: UnreadRange): string {
  let k = String(r.after);
  for (const [thread, upTo] of [...r.threads].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) if (upTo > r.after) k += `\u0000${thread}\u0000${upTo}`;
  return k;
}

/** `counts` plus the rows of `rows` that count for the user under `range` (as PushStore.countUnread counts them). */
function advanceCounts(counts: CountsEntry['counts'], rows: RoomPushRows, userId: string, range: UnreadRange): CountsEntry['counts'] {
  const byThread = new Map(counts.map((c) => [c.threadId, { ...c }]));
  const threadRead = new Map(range.threads);
  const counts_ = (so: number, threadId: string) => so > range.after && !(so <= (threadRead.get(threadId) ?? -Infinity));
  const bump = (threadId: string, highlight: boolean) => {
    let c = byThread.get(threadId);
    if (!c) byThread.set(threadId, (c = { threadId, notif: 0, highlight: 0 }));
    c.notif++;
    if (highlight) c.highlight++;
  };
  const excepted = new Set<number>();
  for (const x of rows.exceptions) {
    if (x.userId !== userId) continue;
    excepted.add(x.streamOrdering);
    if (x.notif && counts_(x.streamOrdering, x.threadId)) bump(x.threadId, x.highlight);
  }
  for (const d of rows.defaults) {
    if (d.sender === userId || excepted.has(d.streamOrdering)) continue;
    if (counts_(d.streamOrdering, d.threadId)) bump(d.threadId, d.highlight);
  }
  return [...byThread.values()];
}

/** A stored PDU in the client format (the fields clients see). */
function clientEvent(pdu: Record<string, any>, unsignedExtra?: Record<string, any>): Record<string, any> {
  const ev: Record<string, any> = {
    content: pdu.content ?? {},
    event_id: pdu.event_id,
    origin_server_ts: pdu.origin_server_ts,
    room_id: pdu.room_id,
    sender: pdu.sender,
    type: pdu.type,
  };
  if (pdu.state_key !== undefined) ev.state_key = pdu.state_key;
  const unsigned = { ...(pdu.unsigned ?? {}), ...(unsignedExtra ?? {}) };
  if (typeof pdu.origin_server_ts === 'number') unsigned.age = Math.max(0, Date.now() - pdu.origin_server_ts);
  ev.unsigned = unsigned;
  return ev;
}
