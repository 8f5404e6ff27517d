/**
 * The notifier (DESIGN.md §4): every stream advance goes through `notify`,
 * which wakes exactly the long-polls (/sync, /events) whose user or rooms the
 * change concerns. Waiting costs nothing: a waiter is a pending promise in two
 * maps (by user and by room), no timers beyond its own timeout.
 *
 * Lost-wakeup safety: /sync computes its answer at token T and then waits
 * from T. A change notified between "T was read" and "the waiter was
 * registered" would be missed, so the notifier keeps a short, bounded log of
 * recent changes per stream; a new waiter first checks that log.
 */
import type { StreamIdGenerator } from './id-generator.js';
import type { NotifiedStream, StreamChange, StreamNotifier, WaitSignal } from './notifier-types.js';
import { decodeSyncToken, emptyToken, SYNC_STREAMS, tokenCovers, type SyncToken } from './tokens.js';

/**
 * How many recent changes per stream the notifier remembers at least. The
 * log grows to twice that before the oldest are dropped, down to it: one
 * splice per RECENT_PER_STREAM changes instead of a shift of the whole log
 * at every change.
 */
const RECENT_PER_STREAM = 1024;
/** A held change still unreadable after this long is delivered anyway (a stray position). */
const STRAY_MS = 10_000;
/** While a token made elsewhere is ahead of this process, `onBehind` is called again this often. */
export const BEHIND_AGAIN_MS = 250;

export type WakeReason = 'change' | 'timeout' | 'aborted' | 'shutdown';

interface Waiter {
  userId: string;
  rooms: readonly string[];
  since: SyncToken;
  resolve: (reason: WakeReason) => void;
}

/** Position of `stream` in a token (events: the position of the writer, else its minimum). */
export function tokenPosition(t: SyncToken, stream: NotifiedStream, instance?: string): number {
  if (stream === 'events') {
    const w = instance !== undefined ? t.events.writers?.[instance] : undefined;
    return Math.max(t.events.min, w ?? 0);
  }
  return t[stream];
}

export class Notifier implements StreamNotifier {
  private readonly byUser = new Map<string, Set<Waiter>>();
  private readonly byRoom = new Map<string, Set<Waiter>>();
  /** Recent changes per stream, sorted by position. */
  private readonly recent = new Map<NotifiedStream, StreamChange[]>();
  /** Per stream: highest position evicted from `recent` (anything at or below may have been forgotten). */
  private readonly evictedUpTo = new Map<NotifiedStream, number>();
  private waiting = 0;
  private closed = false;

  constructor(
    private readonly streams: Partial<Record<NotifiedStream, StreamIdGenerator>>,
    shutdownSignal?: AbortSignal,
  ) {
    shutdownSignal?.addEventListener('abort', () => this.shutdown(), { once: true });
  }

  /** Number of long-polls currently waiting (for metrics). */
  get waitingCount(): number {
    return this.waiting;
  }

  /**
   * The current sync token: every stream's current position (events: the
   * minimum plus each writer ahead of it, whose own rows are readable up to
   * its own position).
   */
  currentToken(): SyncToken {
    const t = emptyToken();
    t.events = this.streams.events?.getPosition() ?? { min: 0 };
    for (const s of SYNC_STREAMS) t[s] = this.streams[s]?.getCurrent() ?? 0;
    return t;
  }

  /**
   * Observers of LOCAL changes (a write in this process): worker mode
   * publishes them to the other processes. Replicated changes enter through
   * `applyReplicated` and are not tapped (no echo).
   */
  readonly taps: Array<(change: StreamChange) => void> = [];

  notify(change: StreamChange): void {
    for (const tap of this.taps) {
      try {
        tap(change);
      } catch {
        /* a publisher must never fail a write */
      }
    }
    this.applyReplicated(change, true);
  }

  /**
   * Observers of EVERY change, local or replicated, called as it reaches
   * the notifier (before it is held or delivered): per-process caches that
   * follow a stream (the /sync membership cache) drop what it touches.
   * `local`: the change was made in this process (`notify`).
   */
  readonly observers: Array<(change: StreamChange, local: boolean) => void> = [];

  /** A change made by another process (its stream position was advanced first); `local` from `notify`. */
  applyReplicated(change: StreamChange, local = false): void {
    for (const o of this.observers) {
      try {
        o(change, local);
      } catch {
        /* an observer must never fail a write or replication */
      }
    }
    // A reader must not be woken before it can read the change: when writes
    // commit out of order, hold the change until the stream's current
    // position reaches it (events with several writers: the position of the
    // change's writer), with a fallback so a stray position never sticks.
    const gen = this.streams[change.stream];
    if (gen && !readable(gen, change)) {
      this.defer(gen, change);
      return;
    }
    this.deliver(change);
  }

  private readonly deferred: StreamChange[] = [];
  private readonly watched = new WeakSet<StreamIdGenerator>();
  private fallback: NodeJS.Timeout | undefined;

  private defer(gen: StreamIdGenerator, change: StreamChange): void {
    this.deferred.push(change);
    if (!this.watched.has(gen)) {
      this.watched.add(gen);
      gen.onAdvance(() => this.flushDeferred(false));
    }
    this.deferredSince.set(change, Date.now());
    this.armFallback();
  }

  /** Held changes are re-checked every second; one still unreadable after STRAY_MS is a stray. */
  private readonly deferredSince = new WeakMap<StreamChange, number>();

  private armFallback(): void {
    if (this.fallback || this.closed) return;
    this.fallback = setTimeout(() => {
      this.fallback = undefined;
      this.flushDeferred(false, Date.now() - STRAY_MS);
      if (this.deferred.length) this.armFallback();
    }, 1000);
    this.fallback.unref?.();
  }

  private flushDeferred(all: boolean, strayBefore = -Infinity): void {
    if (!this.deferred.length) return;
    const ready: StreamChange[] = [];
    const strays: StreamChange[] = [];
    for (let i = 0; i < this.deferred.length; ) {
      const c = this.deferred[i]!;
      const gen = this.streams[c.stream];
      if (all || !gen || readable(gen, c)) {
        ready.push(c);
        this.deferred.splice(i, 1);
      } else if ((this.deferredSince.get(c) ?? 0) < strayBefore) {
        strays.push(c);
        this.deferred.splice(i, 1);
      } else i++;
    }
    if (all || !this.deferred.length) {
      clearTimeout(this.fallback);
      this.fallback = undefined;
    }
    for (const c of ready) this.deliver(c);
    // A stray position (never readable here) wakes its waiters once but is
    // not remembered: remembering it would make every later wait return at
    // once (a busy loop) until the stream reaches it.
    for (const c of strays) this.deliver(c, false);
  }

  /** Wakes every waiter behind `position` on `stream` (catch-up after missed replication). */
  wakeStream(stream: NotifiedStream, position: number): void {
    this.deliver({ stream, position }, true);
  }

  /**
   * Resolves true once this process's current token covers `token` (a token
   * made by another process that is ahead of us), false after `timeoutMs`.
   * `onBehind` is called first (worker mode: catch up from the database),
   * then `onStillBehind` every BEHIND_AGAIN_MS while behind (a quiet read
   * of the positions: a process that does not follow the events rows learns
   * their positions only there, and a writer may record a position it
   * followed to up to 250 ms late).
   */
  async waitForToken(token: SyncToken, timeoutMs: number, onBehind?: () => void, onStillBehind?: () => void): Promise<boolean> {
    // Writer by writer: a token ahead on one events writer waits for that writer, not for every writer.
    const covered = () => tokenCovers(this.currentToken(), token);
    if (covered()) return true;
    onBehind?.();
    const end = Date.now() + timeoutMs;
    let askedAt = Date.now();
    return new Promise<boolean>((resolve) => {
      const unsubs: Array<() => void> = [];
      let timer: NodeJS.Timeout | undefined;
      const finish = (ok: boolean) => {
        for (const u of unsubs) u();
        clearTimeout(timer);
        resolve(ok);
      };
      const check = () => {
        if (covered()) finish(true);
      };
      for (const g of Object.values(this.streams)) if (g) unsubs.push(g.onAdvance(check));
      // Also poll: some streams (e.g. in-memory ones) may not advance through a generator here.
      const poll = () => {
        if (covered()) return finish(true);
        if (Date.now() >= end || this.closed) return finish(covered());
        if (onStillBehind && Date.now() - askedAt >= BEHIND_AGAIN_MS) {
          askedAt = Date.now();
          onStillBehind();
        }
        timer = setTimeout(poll, 50);
      };
      poll();
    });
  }

  /**
   * Worker mode sets this: called when a client's token is ahead of this
   * process (made by a process that saw more), to catch up at once.
   */
  onBehind: (() => void) | undefined;
  /** Worker mode sets this too: called every BEHIND_AGAIN_MS while such a token is still ahead. */
  onStillBehind: (() => void) | undefined;

  /**
   * Before using a `since` token made elsewhere: when it is ahead of this
   * process on a persistent stream, catch up and wait (at most `timeoutMs`)
   * so that tokens from any worker are valid on any other. Without worker
   * mode (no `onBehind`) this returns at once.
   */
  async catchUpTo(token: string | SyncToken, timeoutMs = 5000): Promise<void> {
    if (!this.onBehind) return;
    let t: SyncToken;
    try {
      t = typeof token === 'string' ? decodeSyncToken(token) : { ...token };
    } catch {
      return; // the caller reports the bad token
    }
    t.typing = 0; // in-memory: clamped by the caller, never waited for
    // Writer by writer: a token ahead on one events writer waits for that writer only.
    await this.waitForToken(t, timeoutMs, this.onBehind, this.onStillBehind);
  }

  private deliver(change: StreamChange, remember = true): void {
    if (remember) this.remember(change);
    // Nobody waits here (most processes of a worker deployment, most of the time).
    if (this.waiting === 0) return;
    const hit = new Set<Waiter>();
    if (!change.rooms?.length && !change.users?.length) {
      // A change without a target concerns everyone (rare: e.g. a global reset).
      for (const set of this.byUser.values()) for (const w of set) hit.add(w);
    }
    for (const u of change.users ?? []) for (const w of this.byUser.get(u) ?? []) hit.add(w);
    for (const r of change.rooms ?? []) for (const w of this.byRoom.get(r) ?? []) hit.add(w);
    for (const w of hit) {
      if (change.position > tokenPosition(w.since, change.stream, change.instance)) w.resolve('change');
    }
  }

  /**
   * Resolves when a change concerning `userId` or one of `roomIds` moves a
   * stream past `since`, or on timeout, abort or shutdown.
   */
  waitForChange(userId: string, roomIds: Iterable<string>, since: SyncToken, timeoutMs: number, signal?: WaitSignal): Promise<WakeReason> {
    if (this.closed) return Promise.resolve('shutdown');
    if (signal?.aborted) return Promise.resolve('aborted');
    // Kept by the waiter, never modified: an array is taken as it is (every /sync long-poll passes one).
    const rooms: readonly string[] = Array.isArray(roomIds) ? roomIds : [...roomIds];
    if (this.missedSince(userId, rooms, since)) return Promise.resolve('change');
    if (timeoutMs <= 0) return Promise.resolve('timeout');
    return new Promise<WakeReason>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => waiter.resolve('aborted');
      const waiter: Waiter = {
        userId,
        rooms,
        since,
        resolve: (reason) => {
          if (timer === undefined) return; // already resolved
          clearTimeout(timer);
          timer = undefined;
          signal?.removeEventListener('abort', onAbort);
          this.remove(waiter);
          resolve(reason);
        },
      };
      timer = setTimeout(() => waiter.resolve('timeout'), Math.min(timeoutMs, 2 ** 31 - 1));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.add(waiter);
    });
  }

  /** Wakes every waiter (process shutdown). */
  shutdown(): void {
    this.closed = true;
    clearTimeout(this.fallback);
    const all = new Set<Waiter>();
    for (const set of this.byUser.values()) for (const w of set) all.add(w);
    for (const w of all) w.resolve('shutdown');
  }

  private add(w: Waiter): void {
    this.waiting++;
    addTo(this.byUser, w.userId, w);
    for (const r of w.rooms) addTo(this.byRoom, r, w);
  }

  private remove(w: Waiter): void {
    this.waiting--;
    removeFrom(this.byUser, w.userId, w);
    for (const r of w.rooms) removeFrom(this.byRoom, r, w);
  }

  private remember(change: StreamChange): void {
    let list = this.recent.get(change.stream);
    if (!list) this.recent.set(change.stream, (list = []));
    // Keep sorted by position (writers may report slightly out of order).
    let i = list.length;
    while (i > 0 && list[i - 1]!.position > change.position) i--;
    list.splice(i, 0, change);
    if (list.length > 2 * RECENT_PER_STREAM) {
      const dropped = list.splice(0, list.length - RECENT_PER_STREAM);
      const top = dropped[dropped.length - 1]!.position;
      this.evictedUpTo.set(change.stream, Math.max(this.evictedUpTo.get(change.stream) ?? 0, top));
    }
  }

  /** Whether a change concerning this user/rooms was notified after `since`. */
  private missedSince(userId: string, roomList: readonly string[], since: SyncToken): boolean {
    let rooms: Set<string> | undefined; // made when a remembered change names rooms
    for (const [stream, list] of this.recent) {
      // If changes after `since` may have been forgotten, assume one concerned us.
      if ((this.evictedUpTo.get(stream) ?? 0) > tokenPosition(since, stream)) return true;
      for (let i = list.length - 1; i >= 0; i--) {
        const c = list[i]!;
        if (c.position <= tokenPosition(since, stream, c.instance)) {
          // With several events writers an older change of another writer may still be ahead of its part of
          // the token; none at or below the token's minimum can be (the list is sorted by position).
          if (stream !== 'events' || !since.events.writers || c.position <= since.events.min) break;
          continue;
        }
        if (!c.rooms?.length && !c.users?.length) return true;
        if (c.users?.includes(userId)) return true;
        if (c.rooms?.length) {
          rooms ??= new Set(roomList);
          if (c.rooms.some((r) => rooms!.has(r))) return true;
        }
      }
    }
    return false;
  }
}

/** Whether readers here can read `c`: the stream's position covers it (with a writer named: that writer's position). */
function readable(gen: StreamIdGenerator, c: StreamChange): boolean {
  if (c.instance === undefined) return gen.getCurrent() >= c.position;
  if (c.stream !== 'events') return true; // its writer's position was advanced first
  return gen.getCurrent() >= c.position || gen.positionFor(c.instance) >= c.position;
}

function addTo(map: Map<string, Set<Waiter>>, key: string, w: Waiter): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(w);
}

// An emptied set stays in its map: a long-poller leaves and re-enters the
// same sets (its rooms) on every wake, and dropping and re-creating 50 sets
// per response showed in the profiles. The maps hold one set per room and
// user that ever long-polled.
function removeFrom(map: Map<string, Set<Waiter>>, key: string, w: Waiter): void {
  map.get(key)?.delete(w);
}
