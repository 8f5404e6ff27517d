/**
 * Positions of a stream with several writers (the `events` stream with
 * several event persisters), DESIGN.md §4.
 *
 * - Writers draw positions from ONE PostgreSQL sequence, so positions are
 *   unique and increasing across processes (on SQLite, which only runs a
 *   single process, an in-memory counter stands in).
 * - Each writer has its own position: the highest P such that every write
 *   of THAT writer at or below P has finished (committed or abandoned). A
 *   writer with nothing in flight moves its position up to the highest
 *   position it knows of, but never to the positions it has drawn and not
 *   handed out yet (the rest of its block, `ownCap`): everything else it
 *   will write later draws a larger number from the sequence.
 * - `min` is the lowest of the writers' positions: every write of every
 *   writer at or below it has finished, so a reader may expose it. Positions
 *   between `min` and a writer's own position are visible only for that
 *   writer's rows (the per-writer part of an `m…~…` sync token).
 * - Each writer persists its position in `stream_positions(stream_name,
 *   instance_name, stream_id)` so a process starting later knows where every
 *   writer stood; live updates arrive as POSITION/RDATA commands
 *   (`advanceWriter`).
 */
import type { Db, Queryable } from '../storage/db.js';
import type { EventsPosition } from '../streams/tokens.js';

export interface MultiWriterOptions {
  /** Name in stream_positions, e.g. `events`. */
  streamName: string;
  /** This process. */
  instanceName: string;
  /** Every writer of the stream (`stream_writers.events`). */
  writers: readonly string[];
  /** PostgreSQL sequence shared by the writers, e.g. `events_stream_seq`. */
  sequenceName: string;
  /** Table columns already holding positions (initialise the sequence above them). */
  tables?: Array<{ table: string; column: string }>;
  /** With several writers: how long the unused rest of a drawn block is kept (default BLOCK_TTL_MS). */
  blockTtlMs?: number;
}

type Listener = (pos: EventsPosition, instance: string) => void;

const IDENT = /^[a-z_][a-z0-9_]*$/;

/** How often an idle writer records the position it followed to (recomputeLocal). */
const FOLLOW_RECORD_MS = 250;

/** Positions a writer draws from the sequence at once. */
const ID_BLOCK = 100;

/**
 * With several writers: how long the unused rest of a block may hold this
 * writer's position back (it stays below the block's lowest unused
 * position, and the minimum with it); then the rest is dropped, a gap as
 * after a rolled-back write, and an idle writer follows the others again.
 */
const BLOCK_TTL_MS = 50;

export class MultiWriterIdGenerator {
  private readonly positions = new Map<string, number>();
  /** The lowest of `positions` (kept by `setPosition`: read on every row, token and wake-up). */
  private min = 0;
  private readonly inFlight = new Set<number>();
  private lastAllocated = 0;
  private ownLastFinished = 0;
  private readonly listeners = new Set<Listener>();
  /** A persist round is running. */
  private persisting = false;
  /** The round that starts after the running one: every caller since it began waits for it. */
  private runningRound: { promise: Promise<void>; positions: ReadonlyMap<string, number> } | undefined;
  private nextRound: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;
  /** Per writer: the highest position this process has written to stream_positions. */
  private readonly persistedPositions = new Map<string, number>();
  /** SQLite stand-in for the sequence. */
  private localCounter = 0;

  private constructor(
    private readonly db: Db,
    private readonly opts: MultiWriterOptions,
  ) {}

  get isWriter(): boolean {
    return this.opts.writers.includes(this.opts.instanceName);
  }

  static async create(db: Db, opts: MultiWriterOptions): Promise<MultiWriterIdGenerator> {
    if (!IDENT.test(opts.sequenceName)) throw new Error(`bad sequence name ${opts.sequenceName}`);
    if (opts.writers.length === 0) throw new Error(`${opts.streamName}: no writers`);
    const g = new MultiWriterIdGenerator(db, opts);
    let tableMax = 0;
    for (const t of opts.tables ?? []) {
      const row = await db.queryOne<{ m: number | string | null }>(`SELECT MAX(${t.column}) AS m FROM ${t.table}`);
      if (row?.m != null) tableMax = Math.max(tableMax, Number(row.m));
    }
    const persisted = await db.query<{ instance_name: string; stream_id: number | string }>(
      'SELECT instance_name, stream_id FROM stream_positions WHERE stream_name = ?',
      [opts.streamName],
    );
    for (const r of persisted) tableMax = Math.max(tableMax, Number(r.stream_id));
    let seqNow: number;
    if (db.engine === 'postgres') {
      seqNow = await db.transaction(async (tx) => {
        // Serialise creation between writers starting together.
        await tx.query('SELECT pg_advisory_xact_lock(hashtext(?))', [`myelin-seq-${opts.sequenceName}`]);
        await tx.execute(`CREATE SEQUENCE IF NOT EXISTS ${opts.sequenceName}`);
        const s = await tx.queryOne<{ last_value: string; is_called: boolean }>(`SELECT last_value, is_called FROM ${opts.sequenceName}`);
        let last = s!.is_called ? Number(s!.last_value) : Number(s!.last_value) - 1;
        // Only when the sequence is behind the data (first start, or data written before the sequence existed).
        if (tableMax > last) {
          await tx.query('SELECT setval(?, ?)', [opts.sequenceName, tableMax]);
          last = tableMax;
        }
        return last;
      });
    } else {
      seqNow = tableMax;
      g.localCounter = tableMax;
    }
    for (const w of opts.writers) {
      const row = persisted.find((r) => r.instance_name === w);
      g.setPosition(w, row ? Number(row.stream_id) : 0);
      if (row) g.persistedPositions.set(w, Number(row.stream_id));
    }
    g.lastAllocated = seqNow;
    if (g.isWriter) {
      // Nothing of ours is in flight: every id we drew before (now) is committed or dead.
      g.setPosition(opts.instanceName, Math.max(g.positions.get(opts.instanceName) ?? 0, seqNow));
      await g.persist();
    }
    return g;
  }

  private async nextIds(q: Queryable, n: number): Promise<number[]> {
    if (this.db.engine !== 'postgres') {
      const ids: number[] = [];
      for (let i = 0; i < n; i++) ids.push(++this.localCounter);
      return this.handOut(ids);
    }
    return this.takeFromBlock(q, Math.floor(n));
  }

  /**
   * A writer draws positions from the sequence in blocks (one statement per
   * block, not per batch; requests meanwhile share the draw) and hands them
   * out in order. Its position only counts positions handed out, and never
   * passes the block's lowest unused position (`ownCap`): with several
   * writers an idle writer follows the others' positions, which pass the
   * unused rest of its block as soon as they draw after it. So that this
   * does not hold the minimum back for long, the rest is dropped
   * BLOCK_TTL_MS after the draw (a gap, as after a rolled-back write), and
   * the next write draws a new block. A restart skips what was left.
   */
  private block: number[] = [];
  /** With several writers: how many positions the next draw takes (adapts to the rate of writes). */
  private nextBlockSize = ID_BLOCK;
  /** Positions drawn in the current block (its size when drawn). */
  private blockSize = 0;
  private refilling: Promise<void> | undefined;
  private blockTimer: NodeJS.Timeout | undefined;
  /** While a draw runs: until its positions are known, this writer's position stays at or below this. */
  private drawCap: number | undefined;

  private async takeFromBlock(q: Queryable, n: number): Promise<number[]> {
    const several = this.opts.writers.length > 1;
    while (this.block.length < n) {
      this.refilling ??= (async () => {
        this.drawCap = this.highestKnown();
        try {
          if (several) {
            // A fresh block, all of it drawn now (the rest of the old one is a gap).
            // A block used up before it expired: the next one is twice as large.
            if (this.blockSize && !this.block.length) this.nextBlockSize = Math.min(ID_BLOCK, 2 * this.blockSize);
            const ids = await this.drawIds(q, Math.max(n, this.nextBlockSize));
            this.setBlock(ids);
          } else {
            const want = Math.max(n - this.block.length, 0) + ID_BLOCK;
            this.block.push(...(await this.drawIds(q, want)));
          }
        } finally {
          this.refilling = undefined;
          this.drawCap = undefined;
        }
      })();
      await this.refilling;
    }
    // In flight from the moment they leave the block (in the same turn).
    return this.handOut(this.block.splice(0, n));
  }

  private handOut(ids: number[]): number[] {
    for (const id of ids) {
      this.inFlight.add(id);
      if (id > this.lastAllocated) this.lastAllocated = id;
    }
    return ids;
  }

  private setBlock(ids: number[]): void {
    this.block = ids;
    this.blockSize = ids.length;
    clearTimeout(this.blockTimer);
    this.blockTimer = setTimeout(() => this.dropBlockRest(), this.opts.blockTtlMs ?? BLOCK_TTL_MS);
    this.blockTimer.unref?.();
  }

  /**
   * Drops the unused rest of the block (a gap): nothing of this writer is
   * held back by it any more, so an idle writer follows the others. The
   * next block is sized to what this one served (twice that, at least 1):
   * a writer that writes less often than its blocks expire draws about what
   * it uses, not ID_BLOCK positions per write.
   */
  dropBlockRest(): void {
    clearTimeout(this.blockTimer);
    this.blockTimer = undefined;
    if (!this.block.length) return;
    this.nextBlockSize = Math.max(1, Math.min(ID_BLOCK, 2 * (this.blockSize - this.block.length)));
    this.block = [];
    this.blockSize = 0; // dropped, not used up
    this.recomputeLocal(true);
  }

  /**
   * The highest position this writer may claim whatever it has finished:
   * below the lowest position of its block it has not handed out yet, and,
   * while a draw runs, no higher than everything known when it started (the
   * draw returns larger positions, but which ones is not known yet).
   */
  private ownCap(): number {
    let cap = this.drawCap ?? Infinity;
    if (this.block.length) cap = Math.min(cap, this.block[0]! - 1);
    return cap;
  }

  private async drawIds(q: Queryable, n: number): Promise<number[]> {
    const rows = await q.query<{ id: string | number }>(`SELECT nextval('${this.opts.sequenceName}') AS id FROM generate_series(1, ${Math.floor(n)})`);
    return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
  }

  /** Draws `n` positions for this writer. Call `finish` for each once written (or abandoned). */
  async allocateMany(n: number): Promise<number[]> {
    if (!this.isWriter) throw new Error(`${this.opts.instanceName} is not a writer of ${this.opts.streamName}`);
    // In flight from the moment they are handed out (`handOut`), in the same turn.
    return this.nextIds(this.db, n);
  }

  async allocate(): Promise<number> {
    return (await this.allocateMany(1))[0]!;
  }

  finish(id: number): void {
    if (!this.inFlight.delete(id)) return;
    if (id > this.ownLastFinished) this.ownLastFinished = id;
    this.recomputeLocal();
  }

  async withNext<T>(write: (id: number) => Promise<T>): Promise<T> {
    const id = await this.allocate();
    try {
      return await write(id);
    } finally {
      this.finish(id);
    }
  }

  async withMany<T>(n: number, write: (ids: number[]) => Promise<T>): Promise<T> {
    const ids = await this.allocateMany(n);
    try {
      return await write(ids);
    } finally {
      for (const id of ids) this.finish(id);
    }
  }

  private highestKnown(): number {
    let h = this.lastAllocated;
    for (const p of this.positions.values()) if (p > h) h = p;
    return h;
  }

  /** Sets a writer's position and keeps `min` (no spread of the map per read). */
  private setPosition(instance: string, position: number): void {
    this.positions.set(instance, position);
    let m = Infinity;
    for (const p of this.positions.values()) if (p < m) m = p;
    this.min = m;
  }

  /**
   * `following`: the move comes from another writer's position (an idle
   * writer following). Recording that is not urgent — this writer wrote
   * nothing in between, so a lagging row hides no row of its own from a
   * reader — so it is recorded at most every FOLLOW_RECORD_MS instead of
   * once per followed write.
   */
  private recomputeLocal(following = false): void {
    if (!this.isWriter) return;
    const me = this.opts.instanceName;
    const old = this.positions.get(me) ?? 0;
    let lowest = Infinity;
    for (const id of this.inFlight) if (id < lowest) lowest = id;
    const next = Math.min(lowest !== Infinity ? lowest - 1 : this.highestKnown(), this.ownCap());
    if (next > old) {
      this.setPosition(me, next);
      this.emit(me);
      if (!following) this.persistSoon();
      else this.recordFollowingLater();
    }
  }

  private followRecord: NodeJS.Timeout | undefined;
  private persistQueued = false;

  private recordFollowingLater(): void {
    if (this.followRecord) return;
    this.followRecord = setTimeout(() => {
      this.followRecord = undefined;
      void this.persist();
    }, FOLLOW_RECORD_MS);
    this.followRecord.unref?.();
  }

  /**
   * After writes finished: records the position once the code that finished
   * them has run to its end (a microtask). A group commit records the
   * position in its own transaction and reports it (`markRecorded`) right
   * after finishing its ids: then what is left of the move, if anything, is
   * following the other writers (positions they drew meanwhile), recorded
   * later like any following. No statement per commit.
   */
  private persistSoon(): void {
    if (this.persistQueued) return;
    this.persistQueued = true;
    queueMicrotask(() => {
      this.persistQueued = false;
      if (this.ownRecorded() >= Math.min(this.positions.get(this.opts.instanceName) ?? 0, this.ownLastFinished)) this.recordFollowingLater();
      else void this.persist();
    });
  }

  /** This writer's position as recorded in stream_positions (by this process). */
  private ownRecorded(): number {
    return this.persistedPositions.get(this.opts.instanceName) ?? -1;
  }

  /**
   * Resolves once this writer's own position is recorded at least up to
   * `upTo` (a finished write is then readable through any process that reads
   * stream_positions): at once when a commit recorded it already, else by
   * the running round or a new one (`persist`).
   */
  persistOwn(upTo: number): Promise<void> {
    if (!this.isWriter || this.ownRecorded() >= upTo) return Promise.resolve();
    const running = this.runningRound;
    if (running && (running.positions.get(this.opts.instanceName) ?? -1) >= upTo) return running.promise;
    return this.persist();
  }

  /** Another writer's position (from a POSITION or RDATA command, or its persisted row). */
  advanceWriter(instance: string, position: number): void {
    if (!this.positions.has(instance)) return; // not a writer (any more)
    if (position > (this.positions.get(instance) ?? 0)) {
      this.setPosition(instance, position);
      if (position > this.lastAllocated) this.lastAllocated = position;
      this.emit(instance);
    }
    // An idle local writer follows: its future writes draw larger numbers.
    if (instance !== this.opts.instanceName) this.recomputeLocal(true);
  }

  /** Re-reads every writer's persisted position (catch-up after a Redis outage or at start). */
  async reloadPositions(): Promise<void> {
    const rows = await this.db.query<{ instance_name: string; stream_id: number | string }>(
      'SELECT instance_name, stream_id FROM stream_positions WHERE stream_name = ?',
      [this.opts.streamName],
    );
    for (const r of rows) if (r.instance_name !== this.opts.instanceName) this.advanceWriter(r.instance_name, Number(r.stream_id));
  }

  /** Every position at or below this has finished on every writer. */
  getCurrent(): number {
    return this.min;
  }

  getWriterPosition(instance: string): number | undefined {
    return this.positions.get(instance);
  }

  /** Every writer's position (this process's view). */
  getWriterPositions(): Record<string, number> {
    return Object.fromEntries(this.positions);
  }

  /**
   * The highest position drawn here or known to be finished anywhere: once
   * `getCurrent()` reaches it, every write this process has finished so far
   * is visible to readers (read-after-write, `StreamReplicator.settleWrite`).
   */
  getHighestAllocated(): number {
    return this.highestKnown();
  }

  /**
   * The highest position this writer has finished (or 0). A write that has
   * finished is readable once the writer's own position reaches this; unlike
   * the highest drawn it does not include writes still in flight (drawn
   * by later requests), which the write's answer need not wait for.
   */
  getOwnLastFinished(): number {
    return this.ownLastFinished;
  }

  /** The stream position as the sync token's events part. */
  getPosition(): EventsPosition {
    const min = this.min;
    let writers: Record<string, number> | undefined;
    for (const [w, p] of this.positions) if (p > min) (writers ??= {})[w] = p;
    return writers ? { min, writers } : { min };
  }

  /** Whether a row written by `instance` at `position` is visible at `pos`. */
  static isVisible(pos: EventsPosition, instance: string, position: number): boolean {
    return position <= Math.max(pos.min, pos.writers?.[instance] ?? 0);
  }

  /** Called whenever a writer's position (and maybe `min`) advances. */
  onAdvance(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(instance: string): void {
    const pos = this.getPosition();
    for (const l of this.listeners) l(pos, instance);
  }

  /**
   * Writes this writer's position to stream_positions, with the other
   * writers' positions as this process knows them (they came from those
   * writers, so they are true, and a row only ever moves upwards): a process
   * reading the table then sees a minimum that covers this writer's writes
   * even when an idle writer has not recorded that it followed. One statement
   * for all of them; coalesced.
   */
  persist(): Promise<void> {
    if (!this.isWriter) return Promise.resolve();
    // Everything this process knows is recorded, or being recorded by the
    // running round: wait for that one at most.
    if (this.covered()) return Promise.resolve();
    if (this.runningRound && this.covered(this.runningRound.positions)) return this.runningRound.promise;
    // A caller waits for a round that starts after its call (so it records
    // what the caller knows now), never for later ones: under a steady
    // stream of writes, a caller that joined a running loop used to wait
    // until nobody asked again.
    let round = this.nextRound;
    if (!round) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Callers that do not wait (`void this.persist()`) must not leave an unhandled rejection.
      promise.catch(() => {});
      round = this.nextRound = { promise, resolve, reject };
    }
    if (!this.persisting) void this.runPersistRounds();
    return round.promise;
  }

  /** The statement recording positions (a row only ever moves upwards). */
  private positionsStatement(rows: ReadonlyArray<readonly [string, number]>): { sql: string; params: unknown[] } {
    return {
      sql: `INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES ${rows.map(() => '(?, ?, ?)').join(', ')}
           ON CONFLICT (stream_name, instance_name) DO UPDATE SET stream_id = excluded.stream_id
           WHERE stream_positions.stream_id < excluded.stream_id`,
      params: rows.flatMap(([w, pos]) => [this.opts.streamName, w, pos]),
    };
  }

  /**
   * For writes about to commit together (`ids`, all in flight here): the
   * statement that records, in their own transaction, this writer's
   * position as it will be once they have finished (every other id in
   * flight here is still counted as unfinished); only this writer's row.
   * Undefined when nothing would move.
   * Call `markRecorded(rows)` once the transaction has committed: the
   * answer's `persist()` then has nothing left to write.
   */
  recordWith(ids: readonly number[]): { sql: string; params: unknown[]; rows: Array<[string, number]> } | undefined {
    if (!this.isWriter || !ids.length) return undefined;
    const me = this.opts.instanceName;
    const batch = new Set(ids);
    let lowestOther = Infinity;
    for (const id of this.inFlight) if (!batch.has(id) && id < lowestOther) lowestOther = id;
    for (const id of ids) if (!this.inFlight.has(id)) return undefined; // not ours, or finished already
    const own = Math.max(this.positions.get(me) ?? 0, Math.min(Math.max(...ids), lowestOther - 1, this.ownCap()));
    const rows: Array<[string, number]> = [];
    // Only this writer's row: another writer's row in this transaction would
    // hold that row's lock until our COMMIT, and make the persisters' event
    // commits wait on each other (persist() records the others, outside).
    if (own > (this.persistedPositions.get(me) ?? -1)) rows.push([me, own]);
    return rows.length ? { ...this.positionsStatement(rows), rows } : undefined;
  }

  /** Positions now recorded in stream_positions (by `recordWith`'s statement once committed). */
  markRecorded(rows: ReadonlyArray<readonly [string, number]>): void {
    for (const [w, pos] of rows) this.persistedPositions.set(w, Math.max(this.persistedPositions.get(w) ?? -1, pos));
  }

  /** Whether every writer's position as this process knows it is recorded (or being recorded, in `writing`). */
  private covered(writing?: ReadonlyMap<string, number>): boolean {
    for (const [w, pos] of this.positions) if (pos > Math.max(this.persistedPositions.get(w) ?? -1, writing?.get(w) ?? -1)) return false;
    return true;
  }

  private async runPersistRounds(): Promise<void> {
    this.persisting = true;
    try {
      while (this.nextRound) {
        const round = this.nextRound;
        this.nextRound = undefined;
        try {
          const rows: Array<[string, number]> = [];
          for (const [w, pos] of this.positions) if (pos > (this.persistedPositions.get(w) ?? -1)) rows.push([w, pos]);
          if (rows.length) {
            this.runningRound = { promise: round.promise, positions: new Map(rows) };
            const { sql, params } = this.positionsStatement(rows);
            await this.db.execute(sql, params);
            this.markRecorded(rows);
          }
          round.resolve();
        } catch (e) {
          round.reject(e);
        } finally {
          this.runningRound = undefined;
        }
      }
    } finally {
      this.persisting = false;
    }
  }
}
