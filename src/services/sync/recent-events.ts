/**
 * Reads every /sync response of a process would otherwise repeat, shared
 * between them.
 *
 * RecentEvents: a window of the newest events stream rows (position, room,
 * the target of membership events), read once per stream advance (one query
 * for all the long-polls woken by it) instead of once per response. It
 * answers "which of these rooms have events in (from, to]" and "did a
 * membership event about this user happen in (after, to]" in memory. The
 * window covers (floor, through]; `through` only ever moves to the events
 * stream's current position, at or below which every event has committed,
 * so the window is exact. A range starting below the floor (a client that
 * was away long, or the first syncs after a start) is not answered: callers
 * fall back to the database.
 *
 * PositionMemo: results of identical reads made while the events stream
 * stays at one position (the timeline of a message for each of the room's
 * members woken by it). The rows of a range at or below the current
 * position do not change except by a redaction, which moves the stream.
 * The shared results must not be modified by callers.
 */

export interface RecentEventRow {
  pos: number;
  roomId: string;
  /** state_key of an m.room.member event (the member it is about), else null. */
  member: string | null;
  outlier: boolean;
}

export interface RecentEventsReads {
  /** Rows with from < position <= to, by position; at most `limit`. */
  eventsInRange(from: number, to: number, limit: number): Promise<RecentEventRow[]>;
}

export class RecentEvents {
  private rows: RecentEventRow[] = [];
  private floor: number | undefined;
  private through = 0;
  private running: Promise<boolean> | undefined;

  /** Counters (tests, metrics). */
  readonly stats = { extensions: 0, answered: 0, fallbacks: 0 };

  constructor(
    private readonly reads: RecentEventsReads,
    /** The events stream's current position (everything at or below it has committed). */
    private readonly position: () => number,
    private readonly maxRows = 10_000,
  ) {}

  /**
   * Rooms of `roomIds` with a timeline-eligible (not outlier) event in
   * (from, to]; undefined when the window cannot answer.
   */
  async roomsWithEvents(roomIds: readonly string[], from: number, to: number): Promise<Set<string> | undefined> {
    if (!(await this.covers(from, to))) return undefined;
    const wanted = new Set(roomIds);
    const out = new Set<string>();
    for (let i = this.firstAfter(from); i < this.rows.length; i++) {
      const r = this.rows[i]!;
      if (r.pos > to) break;
      if (!r.outlier && wanted.has(r.roomId)) out.add(r.roomId);
    }
    return out;
  }

  /** Whether a membership event about `userId` lies in (after, to]; undefined when the window cannot answer. */
  async membershipChanged(userId: string, after: number, to: number): Promise<boolean | undefined> {
    if (!(await this.covers(after, to))) return undefined;
    for (let i = this.firstAfter(after); i < this.rows.length; i++) {
      const r = this.rows[i]!;
      if (r.pos > to) break;
      if (r.member === userId) return true;
    }
    return false;
  }

  /** Forgets the window (it starts again at the current position). */
  clear(): void {
    this.rows = [];
    this.floor = undefined;
    this.through = 0;
  }

  /** Whether the window covers (from, to], extending it first when needed. */
  private async covers(from: number, to: number): Promise<boolean> {
    if (this.floor === undefined) {
      // Starts empty at the current position: later ranges are covered.
      this.floor = this.through = this.position();
    }
    let ok = from >= this.floor;
    while (ok && this.through < to) {
      ok = await this.extend(to);
      ok &&= from >= this.floor!;
    }
    if (ok) this.stats.answered++;
    else this.stats.fallbacks++;
    return ok;
  }

  /** One read at a time; callers arriving meanwhile wait for it and check again. */
  private async extend(to: number): Promise<boolean> {
    while (this.running) {
      if (!(await this.running)) return false;
      if (this.through >= to) return true;
    }
    const from = this.through;
    const target = Math.max(to, this.position());
    this.stats.extensions++;
    const run = this.read(from, target);
    this.running = run;
    try {
      return await run;
    } finally {
      if (this.running === run) this.running = undefined;
    }
  }

  private async read(from: number, target: number): Promise<boolean> {
    try {
      const rows = await this.reads.eventsInRange(from, target, this.maxRows + 1);
      if (this.through !== from || this.floor === undefined) return false; // cleared meanwhile
      if (rows.length > this.maxRows) {
        // Too much at once: start again after it.
        this.rows = [];
        this.floor = target;
      } else {
        for (const r of rows) this.rows.push(r);
        if (this.rows.length > this.maxRows) {
          const drop = this.rows.length - Math.floor(this.maxRows / 2);
          this.floor = this.rows[drop - 1]!.pos;
          this.rows = this.rows.slice(drop);
        }
      }
      this.through = target;
      return true;
    } catch {
      return false;
    }
  }

  /** Index of the first row with pos > `pos`. */
  private firstAfter(pos: number): number {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.rows[mid]!.pos <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Results of identical reads while the events stream stays at one position. */
export class PositionMemo<V> {
  private at = -1;
  private readonly entries = new Map<string, Promise<V>>();

  constructor(
    private readonly position: () => number,
    private readonly maxEntries = 256,
  ) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const pos = this.position();
    if (pos !== this.at) {
      this.entries.clear();
      this.at = pos;
    }
    let p = this.entries.get(key);
    if (!p) {
      if (this.entries.size >= this.maxEntries) this.entries.clear();
      p = load();
      this.entries.set(key, p);
      // A failed read is not remembered.
      p.catch(() => {
        if (this.entries.get(key) === p) this.entries.delete(key);
      });
    }
    return p;
  }
}
