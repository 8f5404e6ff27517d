/**
 * Stream position allocation (DESIGN.md §4).
 *
 * Positions are handed out in increasing order; writes may commit out of
 * order, so the *current* position a reader may expose is the highest N such
 * that every position <= N has finished (committed or abandoned). Readers must
 * never see a position while a lower one can still appear.
 *
 * This generator serves one writer process. The multi-writer events stream
 * (worker mode) shares a database sequence and tracks per-writer positions on
 * top of the same `allocate`/`finish` contract.
 */
import type { Queryable } from '../storage/db.js';
import { eventsPositionFor, type EventsPosition } from './tokens.js';

export class StreamIdGenerator {
  private last: number;
  private current: number;
  private readonly inFlight = new Set<number>();
  private readonly listeners = new Set<(pos: number) => void>();

  constructor(start: number) {
    this.last = start;
    this.current = start;
  }

  /** Starts after the highest position found in any of the given table columns. */
  static async fromTables(db: Queryable, sources: Array<{ table: string; column: string }>): Promise<StreamIdGenerator> {
    let max = 0;
    for (const s of sources) {
      const row = await db.queryOne<{ m: number | null }>(`SELECT MAX(${s.column}) AS m FROM ${s.table}`);
      if (row?.m != null && Number(row.m) > max) max = Number(row.m);
    }
    return new StreamIdGenerator(max);
  }

  /** Reserves the next position. Call `finish` once the write is committed or abandoned. */
  allocate(): number {
    const id = ++this.last;
    this.inFlight.add(id);
    return id;
  }

  /**
   * Reserves `n` positions, possibly asynchronously (a multi-writer stream
   * draws them from a database sequence). Callers that may run in worker
   * mode use this form.
   */
  async allocateManyAsync(n: number): Promise<number[]> {
    return this.allocateMany(n);
  }

  /** Reserves `n` consecutive positions. */
  allocateMany(n: number): number[] {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(this.allocate());
    return ids;
  }

  finish(id: number): void {
    if (!this.inFlight.delete(id)) return;
    let next = this.current;
    const lowestInFlight = this.inFlight.size ? Math.min(...this.inFlight) : Infinity;
    next = Math.min(this.last, lowestInFlight - 1);
    if (next > this.current) {
      this.current = next;
      for (const l of this.listeners) l(next);
    }
  }

  /** Allocates a position, runs the write, and finishes the position whatever happens. */
  async withNext<T>(write: (id: number) => Promise<T>): Promise<T> {
    const id = this.allocate();
    try {
      return await write(id);
    } finally {
      this.finish(id);
    }
  }

  async withMany<T>(n: number, write: (ids: number[]) => Promise<T>): Promise<T> {
    const ids = this.allocateMany(n);
    try {
      return await write(ids);
    } finally {
      for (const id of ids) this.finish(id);
    }
  }

  /** Highest position below which every write has finished. */
  getCurrent(): number {
    return this.current;
  }

  /**
   * The position as a token's events part: `{min}` here; a stream with
   * several writers adds the writers that are ahead of the minimum.
   */
  getPosition(): EventsPosition {
    return { min: this.getCurrent() };
  }

  /**
   * Up to where the rows of `writer` are readable here: `getPosition()`'s
   * position for that writer (the minimum, or the writer's own position when
   * it is ahead). Read for every replicated row, so a stream with several
   * writers answers it without building a position.
   */
  positionFor(writer: string): number {
    return eventsPositionFor(this.getPosition(), writer);
  }

  /** Highest position handed out so far. */
  getLastAllocated(): number {
    return this.last;
  }

  /** Called whenever the current position advances. */
  onAdvance(listener: (pos: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For replicated positions from another process (worker mode). */
  advanceTo(pos: number): void {
    if (pos > this.last) this.last = pos;
    if (pos > this.current && this.inFlight.size === 0) {
      this.current = pos;
      for (const l of this.listeners) l(pos);
    }
  }
}
