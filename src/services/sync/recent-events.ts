/**
 * Reads every /sync response of a process would otherwise repeat, shared
 * between them.
 *
 * RecentEvents: a window of the newest events stream rows (position, room,
 * the target of membership events, writer), read once per stream advance
 * (one query for all the long-polls woken by it) instead of once per
 * response. It answers "which of these rooms have events in (from, to]"
 * and "did a membership event about this user happen in (after, to]" in
 * memory. Positions are per writer (streams/tokens.ts): the window holds
 * every row above `floor` that `through` covers, and `through` only ever
 * moves to the events stream's current position (each writer's rows at or
 * below its own position have committed), so the window is exact. A range
 * starting below the floor (a client that was away long, or the first
 * syncs after a start) is not answered: callers fall back to the database.
 *
 * PositionMemo: results of identical reads made while the events stream
 * stays at one position (the timeline of a message for each of the room's
 * members woken by it). The rows of a range at or below the current
 * position do not change except by a redaction, which moves the stream.
 * The shared results must not be modified by callers.
 */

import { eventsCovers, eventsPositionFor, eventsUpperBound, hasWriterParts, type EventsPosition } from '../../streams/tokens.js';

/** A plain number (one writer) or per writer. */
type Position = number | EventsPosition;
const asPosition = (p: Position): EventsPosition => (typeof p === 'number' ? { min: p } : p);
/** What the reads get: a plain number when no writer is ahead of the minimum (a single writer). */
const plain = (p: EventsPosition): Position => (hasWriterParts(p) ? p : p.min);

export interface RecentEventRow {
  pos: number;
  roomId: string;
  /** state_key of an m.room.member event (the member it is about), else null. */
  member: string | null;
  outlier: boolean;
  /** The writer of the row (events.instance_name). */
  instance?: string;
}

export interface RecentEventsReads {
  /** Rows in (from, to] writer by writer, by position; at most `limit`. */
  eventsInRange(from: Position, to: Position, limit: number): Promise<RecentEventRow[]>;
}

export class RecentEvents {
  private rows: RecentEventRow[] = [];
  /** Every row above it that `through` covers is in the window. */
  private floor: number | undefined;
  private through: EventsPosition = { min: 0 };
  private running: Promise<boolean> | undefined;

  /** Counters (tests, metrics). */
  readonly stats = { extensions: 0, answered: 0, fallbacks: 0 };

  constructor(
    private readonly reads: RecentEventsReads,
    /** The events stream's current position (each writer's rows at or below its own have committed). */
    private readonly position: () => Position,
    private readonly maxRows = 10_000,
  ) {}

  /**
   * Rooms of `roomIds` with a timeline-eligible (not outlier) event in
   * (from, to]; undefined when the window cannot answer.
   */
  async roomsWithEvents(roomIds: readonly string[], fromIn: Position, toIn: Position): Promise<Set<string> | undefined> {
    const from = asPosition(fromIn);
    const to = asPosition(toIn);
    if (!(await this.covers(from.min, to))) return undefined;
    const wanted = new Set(roomIds);
    const out = new Set<string>();
    const single = !from.writers && !to.writers;
    const top = eventsUpperBound(to);
    for (let i = this.firstAfter(from.min); i < this.rows.length; i++) {
      const r = this.rows[i]!;
      if (r.pos > top) break;
      if (r.outlier || !wanted.has(r.roomId)) continue;
      if (single || (r.pos > eventsPositionFor(from, r.instance ?? '') && r.pos <= eventsPositionFor(to, r.instance ?? ''))) out.add(r.roomId);
    }
    return out;
  }

  /**
   * Per room of `roomIds` with rows above `to`'s minimum that `to` covers
   * (writer by writer): the position of the newest; undefined when the
   * window cannot answer.
   */
  async newestCovered(roomIds: readonly string[], to: EventsPosition): Promise<Map<string, number> | undefined> {
    if (!(await this.covers(to.min, to))) return undefined;
    const wanted = new Set(roomIds);
    const out = new Map<string, number>();
    const top = eventsUpperBound(to);
    for (let i = this.firstAfter(to.min); i < this.rows.length; i++) {
      const r = this.rows[i]!;
      if (r.pos > top) break;
      // By position: the last one kept is the newest.
      if (wanted.has(r.roomId) && r.pos <= eventsPositionFor(to, r.instance ?? '')) out.set(r.roomId, r.pos);
    }
    return out;
  }

  /** Whether a membership event about `userId` lies above `after` and within `to`; undefined when the window cannot answer. */
  async membershipChanged(userId: string, after: number, toIn: Position): Promise<boolean | undefined> {
    const to = asPosition(toIn);
    if (!(await this.covers(after, to))) return undefined;
    const top = eventsUpperBound(to);
    for (let i = this.firstAfter(after); i < this.rows.length; i++) {
      const r = this.rows[i]!;
      if (r.pos > top) break;
      if (r.member === userId && r.pos <= eventsPositionFor(to, r.instance ?? '')) return true;
    }
    return false;
  }

  /** Forgets the window (it starts again at the current position). */
  clear(): void {
    this.rows = [];
    this.floor = undefined;
    this.through = { min: 0 };
  }

  /** Whether the window covers every row above `from` within `to`, extending it first when needed. */
  private async covers(from: number, to: EventsPosition): Promise<boolean> {
    if (this.floor === undefined) {
      // Starts empty at the current position: later ranges are covered.
      this.through = asPosition(this.position());
      this.floor = eventsUpperBound(this.through);
    }
    let ok = from >= this.floor;
    while (ok && !eventsCovers(this.through, to)) {
      ok = await this.extend(to);
      ok &&= from >= this.floor!;
    }
    if (ok) this.stats.answered++;
    else this.stats.fallbacks++;
    return ok;
  }

  /** One read at a time; callers arriving meanwhile wait for it and check again. */
  private async extend(to: EventsPosition): Promise<boolean> {
    while (this.running) {
      if (!(await this.running)) return false;
      if (eventsCovers(this.through, to)) return true;
    }
    const from = this.through;
    // Only up to what has committed: a `to` beyond the current position (made elsewhere) is not answered.
    const target = asPosition(this.position());
    if (!eventsCovers(target, to)) return false;
    this.stats.extensions++;
    const run = this.read(from, target);
    this.running = run;
    try {
      return await run;
    } finally {
      if (this.running === run) this.running = undefined;
    }
  }

  private async read(from: EventsPosition, target: EventsPosition): Promise<boolean> {
    try {
      const rows = await this.reads.eventsInRange(plain(from), plain(target), this.maxRows + 1);
      if (this.through !== from || this.floor === undefined) return false; // cleared meanwhile
      if (rows.length > this.maxRows) {
        // Too much at once: start again after it.
        this.rows = [];
        this.floor = eventsUpperBound(target);
      } else {
        // With several writers a new row may lie below rows already held (its writer was behind): merge by position.
        if (rows.length && this.rows.length && rows[0]!.pos < this.rows[this.rows.length - 1]!.pos) this.rows = mergeByPos(this.rows, rows);
        else for (const r of rows) this.rows.push(r);
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

function mergeByPos(a: RecentEventRow[], b: RecentEventRow[]): RecentEventRow[] {
  const out: RecentEventRow[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.pos <= b[j]!.pos)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/** Results of identical reads while the events stream stays at one position. */
export class PositionMemo<V> {
  private at: number | string = -1;
  private readonly entries = new Map<string, Promise<V>>();

  constructor(
    /** The stream's position (with several writers, a key of every writer's position). */
    private readonly position: () => number | string,
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
