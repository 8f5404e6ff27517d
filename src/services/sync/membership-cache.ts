/**
 * Per-user membership cache of the /sync path: the user's current
 * memberships (room, membership, event, stream ordering; forgotten rooms
 * left out) and the joined room ids a long-poll listens to.
 *
 * Exactness does not depend on when an invalidation arrives. Every entry
 * records `checkedThrough`, an events stream position such that every
 * membership event at or below it is reflected in the entry: the stream's
 * current position read before the rows were (everything at or below the
 * current position has committed). An entry is used for a response at
 * position `at` only when `checkedThrough >= at`; otherwise one probe of the
 * room_memberships (user_id, stream_ordering) index asks whether any
 * membership event about the user lies above `checkedThrough`. None: the
 * entry is good up to the position read before the probe. Some: it is read
 * again. (The probe is answered from the shared window of recent events
 * when it covers the range, see recent-events.ts.) So a join, leave, invite, kick or ban persisted by this process or
 * by any other is never hidden, even when the position becomes readable
 * before the writer notifies (the event creator evaluates push rules in
 * between) or before a replicated row arrives (fresh positions read from
 * the database in worker mode).
 *
 * Invalidation drops entries early: events stream changes naming users
 * (membership events, local or replicated: `wireSync` hooks the notifier),
 * and the `sync_memberships` cache of the caches stream (dropped whole when
 * a process may have missed rows). A read that was under way when its user
 * was invalidated still answers its callers (its rows are exact up to its
 * own `checkedThrough`) but is not kept.
 *
 * What the probe cannot see: `forget` (a flag on current_membership, no
 * membership event) and a resolved-state fix of current_membership. /sync
 * therefore reads memberships fresh (`fresh`) for initial and full-state
 * syncs and whenever a membership moved since `since`: the only responses
 * where left or forgotten rooms are listed. Entries are also re-read after
 * `maxAgeMs` as a bound on anything unforeseen.
 */
import { roomAllowed } from '../../matrix/filter-apply.js';
import type { MembershipAt } from '../../storage/sync/sync-store.js';
import { eventsJoin, eventsUpperBound, type EventsPosition } from '../../streams/tokens.js';

export interface MembershipReads {
  /** Current memberships of the user (forgotten rooms excluded). */
  currentMemberships(userId: string): Promise<MembershipAt[]>;
  /**
   * Whether a membership event about the user has a stream ordering above
   * `after` within `upTo` (writer by writer; looking further is allowed: a
   * later one only costs a read).
   */
  membershipChangedAfter(userId: string, after: number, upTo: EventsPosition): Promise<boolean>;
}

export interface UserMemberships {
  readonly rows: readonly MembershipAt[];
  /** Ids of the rooms the user is joined to. */
  readonly joined: readonly string[];
  /** Highest stream ordering among the rows (0 when none). */
  readonly maxStreamOrdering: number;
}

export interface MembershipCacheLimits {
  /** Users kept (least recently used dropped first). */
  maxUsers: number;
  /** Membership rows kept over all users. */
  maxRows: number;
  /** An entry older than this is read again. */
  maxAgeMs: number;
}

const DEFAULT_LIMITS: MembershipCacheLimits = { maxUsers: 20_000, maxRows: 2_000_000, maxAgeMs: 5 * 60_000 };

interface Entry extends UserMemberships, Selected {
  checkedThrough: number;
  loadedAt: number;
}

interface Load {
  promise: Promise<Entry>;
  through: number;
  /** Invalidated while reading: answer the callers, do not keep. */
  stale: boolean;
}

export class MembershipCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loads = new Map<string, Load>();
  private rowCount = 0;
  private readonly limits: MembershipCacheLimits;

  /** Counters (tests, metrics). */
  readonly stats = { hits: 0, probes: 0, loads: 0, invalidations: 0 };

  constructor(
    private readonly reads: MembershipReads,
    /** The events stream's current position (everything at or below it has committed). */
    private readonly position: () => number,
    limits: Partial<MembershipCacheLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /**
   * The user's memberships, exact for every membership event the events
   * position `at` covers (a plain number, or per writer: streams/tokens.ts).
   */
  async get(userId: string, atIn: number | EventsPosition): Promise<UserMemberships> {
    const at = typeof atIn === 'number' ? { min: atIn } : atIn;
    const top = eventsUpperBound(at);
    const e = this.entries.get(userId);
    if (e && this.now() - e.loadedAt <= this.limits.maxAgeMs) {
      if (e.checkedThrough >= top) {
        this.stats.hits++;
        this.touch(userId, e);
        return e;
      }
      // Read before the probe: every membership event at or below it has
      // committed. Writers ahead of it in `at` are probed up to `at` only
      // (a writer's rows above its own position may still appear), so the
      // entry is then known good up to `floor`, not up to `top`.
      const floor = this.position();
      this.stats.probes++;
      const moved = await this.reads.membershipChangedAfter(userId, e.checkedThrough, eventsJoin(at, { min: floor }));
      if (!moved) {
        if (this.entries.get(userId) === e) {
          e.checkedThrough = Math.max(e.checkedThrough, floor);
          this.touch(userId, e);
        }
        return e;
      }
    }
    if (e) this.remove(userId);
    return this.load(userId, top, true);
  }

  /** Reads the user's memberships from the database now (and keeps them). */
  fresh(userId: string): Promise<UserMemberships> {
    this.remove(userId);
    return this.load(userId, Infinity, false);
  }

  /** Drops the entries of these users (their membership changed). */
  invalidate(userIds: Iterable<string>): void {
    for (const u of userIds) {
      this.stats.invalidations++;
      this.remove(u);
      const l = this.loads.get(u);
      if (l) l.stale = true;
    }
  }

  clear(): void {
    this.entries.clear();
    this.rowCount = 0;
    for (const l of this.loads.values()) l.stale = true;
  }

  get size(): number {
    return this.entries.size;
  }

  private load(userId: string, at: number, mayJoin: boolean): Promise<Entry> {
    const running = this.loads.get(userId);
    if (mayJoin && running && !running.stale && running.through >= at) return running.promise;
    const through = this.position();
    const load: Load = { through, stale: false, promise: undefined as unknown as Promise<Entry> };
    this.stats.loads++;
    load.promise = (async () => {
      try {
        const rows = await this.reads.currentMemberships(userId);
        const e = makeEntry(rows, through, this.now());
        if (!load.stale && this.loads.get(userId) === load) this.put(userId, e);
        return e;
      } finally {
        if (this.loads.get(userId) === load) this.loads.delete(userId);
      }
    })();
    this.loads.set(userId, load);
    return load.promise;
  }

  private put(userId: string, e: Entry): void {
    this.remove(userId);
    if (e.rows.length > this.limits.maxRows) return;
    this.entries.set(userId, e);
    this.rowCount += e.rows.length;
    while (this.entries.size > this.limits.maxUsers || this.rowCount > this.limits.maxRows) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
  }

  private touch(userId: string, e: Entry): void {
    // Map order is insertion order: re-inserting makes it the most recently used.
    this.entries.delete(userId);
    this.entries.set(userId, e);
  }

  private remove(userId: string): void {
    const e = this.entries.get(userId);
    if (!e) return;
    this.entries.delete(userId);
    this.rowCount -= e.rows.length;
  }
}

function makeEntry(rows: MembershipAt[], checkedThrough: number, loadedAt: number): Entry {
  const joined: string[] = [];
  let max = 0;
  for (const r of rows) {
    if (r.membership === 'join') joined.push(r.roomId);
    if (r.streamOrdering > max) max = r.streamOrdering;
  }
  return { rows, joined, maxStreamOrdering: max, checkedThrough, loadedAt, selected: undefined };
}

/** The room filter's part that selects rooms (SyncFilter.room). */
export interface RoomSelection {
  rooms?: string[];
  not_rooms?: string[];
}

/** The last selection asked of an entry (one client per user is the common case). */
interface Selected {
  selected?: { filter: RoomSelection; result: UserMemberships };
}

/**
 * The rows and joined rooms a filter's room selection lets through, in the
 * same order (`maxStreamOrdering` stays that of every row). Without a
 * selection: `m` itself. Every long-poll of a client asks this of the same
 * entry with the same stored filter (frozen, shared: api/client/sync.ts),
 * so for a frozen selection the last answer is kept with the entry (entries
 * are never modified otherwise: a membership change makes a new entry).
 */
export function selectRooms(m: UserMemberships, f: RoomSelection | undefined): UserMemberships {
  if (!f || (!f.rooms && !f.not_rooms)) return m;
  const memo = m as UserMemberships & Selected;
  if (memo.selected?.filter === f) return memo.selected.result;
  const allowed = (roomId: string) => roomAllowed(f, roomId);
  const result: UserMemberships = { rows: m.rows.filter((r) => allowed(r.roomId)), joined: m.joined.filter(allowed), maxStreamOrdering: m.maxStreamOrdering };
  if (Object.isFrozen(f)) memo.selected = { filter: f, result };
  return result;
}
