/**
 * The events stream of a worker deployment on PostgreSQL, seen through the
 * StreamIdGenerator interface the rest of the code uses
 * (`services.streams.events`), on top of a MultiWriterIdGenerator:
 *
 * - `getCurrent()` is the multi-writer minimum: every event at or below it
 *   has finished on every event persister, so /sync, /messages and the
 *   notifier may expose it; tokens made on any process are valid on any
 *   other (they never claim more than is committed).
 * - Writers draw positions from the shared sequence (`allocateManyAsync`,
 *   `withNext`, `withMany`); the synchronous `allocate*` cannot be used.
 * - `onAdvance` fires when any writer's position moves (a local finish, or
 *   another writer's position arriving by RDATA/POSITION/database
 *   catch-up), with the minimum: readers read each writer's rows up to its
 *   own position, so a waiter may be satisfied without the minimum moving.
 */
import type { Db } from '../storage/db.js';
import { StreamIdGenerator } from '../streams/id-generator.js';
import type { EventsPosition } from '../streams/tokens.js';
import { MultiWriterIdGenerator } from './multi-writer-id-generator.js';

export class MultiWriterEventsStream extends StreamIdGenerator {
  private min: number;
  private readonly minListeners = new Set<(pos: number) => void>();

  constructor(readonly multi: MultiWriterIdGenerator) {
    super(multi.getCurrent());
    this.min = multi.getCurrent();
    multi.onAdvance(() => {
      this.min = multi.getCurrent();
      for (const l of this.minListeners) l(this.min);
    });
  }

  static async open(db: Db, instanceName: string, writers: readonly string[]): Promise<MultiWriterEventsStream> {
    const multi = await MultiWriterIdGenerator.create(db, {
      streamName: 'events',
      instanceName,
      writers,
      sequenceName: 'events_stream_seq',
      tables: [{ table: 'events', column: 'stream_ordering' }],
    });
    return new MultiWriterEventsStream(multi);
  }

  override allocate(): number {
    throw new Error('the multi-writer events stream allocates asynchronously (allocateManyAsync / withNext)');
  }

  override allocateMany(_n: number): number[] {
    throw new Error('the multi-writer events stream allocates asynchronously (allocateManyAsync / withNext)');
  }

  override allocateManyAsync(n: number): Promise<number[]> {
    return this.multi.allocateMany(n);
  }

  override finish(id: number): void {
    this.multi.finish(id);
  }

  override async withNext<T>(write: (id: number) => Promise<T>): Promise<T> {
    return this.multi.withNext(write);
  }

  override async withMany<T>(n: number, write: (ids: number[]) => Promise<T>): Promise<T> {
    return this.multi.withMany(n, write);
  }

  override getCurrent(): number {
    return this.multi.getCurrent();
  }

  /** The minimum plus every writer ahead of it (the per-writer sync token part). */
  override getPosition(): EventsPosition {
    return this.multi.getPosition();
  }

  override positionFor(writer: string): number {
    return Math.max(this.multi.getCurrent(), this.multi.getWriterPosition(writer) ?? 0);
  }

  /** This process's own position when it is a writer (what it may publish), else the minimum. */
  ownPosition(instance: string): number {
    return this.multi.getWriterPosition(instance) ?? this.multi.getCurrent();
  }

  override getLastAllocated(): number {
    return Math.max(this.multi.getCurrent(), ...Object.values(this.multi.getPosition().writers ?? {}));
  }

  override onAdvance(listener: (pos: number) => void): () => void {
    this.minListeners.add(listener);
    return () => this.minListeners.delete(listener);
  }

  /** A single-writer style advance has no writer: ignored (use advanceWriter). */
  override advanceTo(_pos: number): void {}

  advanceWriter(instance: string, position: number): void {
    this.multi.advanceWriter(instance, position);
  }
}
