/**
 * Read-after-write between processes (StreamReplicator): a writer answers
 * once its position covers the write and is recorded (`settleWrite`); the
 * forwarding process applies the answered positions (`applyWriteReply`); any
 * other process reads the recorded positions before a read
 * (`freshPositions`) — all without waiting for Redis. Positions learnt that
 * way and never confirmed by Redis rows are caught up (waking waiters).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkersPgDatabase } from '../../helpers/workers-pg.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { Notifier } from '../../../src/streams/notifier.js';
import { eventsPositionFor } from '../../../src/streams/tokens.js';
import type { NotifiedStream } from '../../../src/streams/notifier-types.js';
import { CacheRegistry } from '../../../src/workers/caches.js';
import { MultiWriterEventsStream } from '../../../src/workers/events-stream.js';
import { StreamReplicator, type PositionRow } from '../../../src/workers/stream-replication.js';
import { FakeBus } from './fake-bus.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('read-after-write, single-writer streams', () => {
  /** A shared stand-in for the stream_positions table. */
  function table() {
    const rows = new Map<string, PositionRow>();
    let reads = 0;
    return {
      rows,
      get reads() {
        return reads;
      },
      read: async (): Promise<PositionRow[]> => {
        reads++;
        const snapshot = [...rows.values()].map((r) => ({ ...r }));
        await sleep(5);
        return snapshot;
      },
      write: async (stream: string, instance: string, position: number) => {
        const k = `${stream}/${instance}`;
        if (Number(rows.get(k)?.stream_id ?? -1) < position) rows.set(k, { stream_name: stream, instance_name: instance, stream_id: position });
      },
    };
  }

  function proc(bus: FakeBus, db: ReturnType<typeof table>, me: string) {
    const streams: Partial<Record<NotifiedStream, StreamIdGenerator>> = {
      receipts: new StreamIdGenerator(0),
      account_data: new StreamIdGenerator(0),
    };
    const notifier = new Notifier(streams);
    const caches = new CacheRegistry();
    let cleared = 0;
    caches.register('account_data', () => {}, () => cleared++);
    const rep = new StreamReplicator({
      instanceName: me,
      writersOf: () => ['writer'],
      streams,
      notifier,
      transport: bus.transport(me),
      readPositions: db.read,
      persistPosition: db.write,
      caches,
      pollConnectedMs: 1e9,
    });
    return { streams, notifier, rep, cleared: () => cleared };
  }

  async function write(w: ReturnType<typeof proc>, stream: NotifiedStream, rooms: string[]) {
    const g = w.streams[stream]!;
    const pos = await g.withNext(async (id) => id);
    w.notifier.notify({ stream, position: pos, rooms });
    return pos;
  }

  let bus: FakeBus;
  let db: ReturnType<typeof table>;
  let w: ReturnType<typeof proc>;
  let fwd: ReturnType<typeof proc>;
  let other: ReturnType<typeof proc>;
  beforeAll(async () => {
    bus = new FakeBus({ targeted: false });
    db = table();
    w = proc(bus, db, 'writer');
    fwd = proc(bus, db, 'forwarder');
    other = proc(bus, db, 'other');
    for (const p of [w, fwd, other]) await p.rep.start();
  });
  afterAll(() => {
    for (const p of [w, fwd, other]) p.rep.stop();
  });

  it('the writer answers with its recorded position; the forwarder exposes it before Redis delivers', async () => {
    bus.hold = true; // Redis is slow: nothing arrives until released
    const pos = await write(w, 'receipts', ['!r:x']);
    const positions = await w.rep.settleWrite('receipts');
    expect(positions).toEqual({ writer: pos });
    // Recorded before the answer: a fresh read anywhere sees it.
    expect(Number(db.rows.get('receipts/writer')?.stream_id)).toBe(pos);
    expect(fwd.streams.receipts!.getCurrent()).toBe(pos - 1);
    await fwd.rep.applyWriteReply('receipts', positions);
    expect(fwd.streams.receipts!.getCurrent()).toBe(pos);
    bus.release();
  });

  it('a fresh read on another process sees a write Redis has not delivered, and drops caches that follow the stream', async () => {
    bus.hold = true;
    const pos = await write(w, 'account_data', ['!r:x']);
    await w.rep.settleWrite('account_data');
    expect(other.streams.account_data!.getCurrent()).toBeLessThan(pos);
    const before = other.cleared();
    await other.rep.freshPositions();
    expect(other.streams.account_data!.getCurrent()).toBe(pos);
    expect(other.cleared()).toBe(before + 1);
    bus.release();
  });

  it('the Redis row still wakes a long-poll that was waiting before the fresh read', async () => {
    bus.hold = true;
    const since = other.notifier.currentToken();
    const woke = other.notifier.waitForChange('@u:x', ['!r:x'], since, 3000);
    await write(w, 'receipts', ['!r:x']);
    await w.rep.settleWrite('receipts');
    await other.rep.freshPositions();
    bus.release();
    expect(await woke).toBe('change');
  });

  it('reads arriving together share one query; one arriving during a query waits for the next', async () => {
    const r0 = db.reads;
    await Promise.all([other.rep.freshPositions(), other.rep.freshPositions(), other.rep.freshPositions()]);
    expect(db.reads - r0).toBe(1);
    const r1 = db.reads;
    const first = other.rep.freshPositions();
    await sleep(1); // the query is in flight: a write acknowledged now may be missed by it
    bus.hold = true;
    const pos = await write(w, 'receipts', ['!r:x']);
    await w.rep.settleWrite('receipts');
    const second = other.rep.freshPositions();
    const third = other.rep.freshPositions();
    await Promise.all([first, second, third]);
    expect(db.reads - r1).toBe(2);
    expect(other.streams.receipts!.getCurrent()).toBe(pos);
    bus.release();
  });

  it('positions never confirmed by Redis rows are caught up, waking the waiters behind them', async () => {
    const since = other.notifier.currentToken();
    const woke = other.notifier.waitForChange('@u:x', ['!elsewhere:x'], since, 5000);
    bus.up = false; // the row is lost
    await write(w, 'receipts', ['!r:x']);
    await w.rep.settleWrite('receipts');
    await other.rep.freshPositions();
    bus.up = true;
    const t0 = Date.now();
    // The lost row's rooms are unknown: every waiter of the stream is woken.
    expect(await woke).toBe('change');
    expect(Date.now() - t0).toBeLessThan(4000);
  });
});

describe('read-after-write, events with two persisters (PostgreSQL)', () => {
  const WRITERS = ['ep1', 'ep2'];
  let pg: WorkersPgDatabase;
  const open = () => pg.open();
  const reps: StreamReplicator[] = [];
  beforeAll(async () => {
    pg = await WorkersPgDatabase.create('myelin_raw', 'raw-test');
  });
  afterAll(async () => {
    for (const r of reps) r.stop();
    await pg?.close();
  });

  async function proc(bus: FakeBus, me: string) {
    const db = open();
    const events = await MultiWriterEventsStream.open(db, me, WRITERS);
    const streams = { events };
    const notifier = new Notifier(streams);
    const upsert = (stream: string, rows: Array<[string, number]>) =>
      db.execute(
        `INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES ${rows.map(() => '(?, ?, ?)').join(', ')}
         ON CONFLICT (stream_name, instance_name) DO UPDATE SET stream_id = excluded.stream_id
         WHERE stream_positions.stream_id < excluded.stream_id`,
        rows.flatMap(([i, p]) => [stream, i, p]),
      );
    const rep = new StreamReplicator({
      instanceName: me,
      writersOf: (s) => (s === 'events' ? WRITERS : ['master']),
      streams,
      notifier,
      transport: bus.transport(me),
      readPositions: () => db.query('SELECT stream_name, instance_name, stream_id FROM stream_positions'),
      persistPosition: async (s, i, p) => {
        await upsert(s, [[i, p]]);
      },
      pollConnectedMs: 1e9,
    });
    await rep.start();
    reps.push(rep);
    return { events, notifier, rep };
  }

  it('the persister answers once its own position covers the write and is recorded; a third process reads it fresh', async () => {
    const bus = new FakeBus({ targeted: false });
    const ep1 = await proc(bus, 'ep1');
    await proc(bus, 'ep2');
    const reader = await proc(bus, 'reader');
    bus.deaf.add('reader');
    const pos = await ep1.events.withNext(async (id) => id);
    ep1.notifier.notify({ stream: 'events', position: pos, rooms: ['!r:x'] });
    const positions = await ep1.rep.settleWrite('events');
    // Readers read ep1's rows up to ep1's own position: that covers the write (the idle persister need not have followed).
    expect(positions!.ep1).toBeGreaterThanOrEqual(pos);
    // Recorded by the time the write is answered.
    const rows = await pg.dbs[0]!.query<{ instance_name: string; stream_id: string }>("SELECT instance_name, stream_id FROM stream_positions WHERE stream_name = 'events'");
    expect(Number(rows.find((r) => r.instance_name === 'ep1')?.stream_id)).toBeGreaterThanOrEqual(pos);
    // A process that heard nothing on Redis reads them before a read.
    const readerAt = () => eventsPositionFor(reader.notifier.currentToken().events, 'ep1');
    expect(readerAt()).toBeLessThan(pos);
    await reader.rep.freshPositions();
    expect(readerAt()).toBeGreaterThanOrEqual(pos);
  });

  it('a finished write is answered without waiting for a write drawn after it that is still in flight', async () => {
    const bus = new FakeBus({ targeted: false });
    const ep1 = await proc(bus, 'ep1');
    await proc(bus, 'ep2');
    const first = await ep1.events.allocateManyAsync(1);
    const later = await ep1.events.allocateManyAsync(1); // another request, still being persisted
    ep1.events.finish(first[0]!);
    ep1.notifier.notify({ stream: 'events', position: first[0]!, rooms: ['!r:x'] });
    const started = Date.now();
    const positions = await ep1.rep.settleWrite('events');
    expect(Date.now() - started).toBeLessThan(2000); // not the 5 s settle timeout
    expect(positions!.ep1).toBeGreaterThanOrEqual(first[0]!);
    expect(positions!.ep1).toBeLessThan(later[0]!);
    ep1.events.finish(later[0]!);
  });

  it('the forwarder applies the answered positions of every persister at once', async () => {
    const bus = new FakeBus({ targeted: false });
    const ep1 = await proc(bus, 'ep1');
    await proc(bus, 'ep2');
    const fwd = await proc(bus, 'fwd');
    bus.deaf.add('fwd');
    const pos = await ep1.events.withNext(async (id) => id);
    ep1.notifier.notify({ stream: 'events', position: pos, rooms: ['!r:x'] });
    const positions = await ep1.rep.settleWrite('events');
    const fwdAt = () => eventsPositionFor(fwd.notifier.currentToken().events, 'ep1');
    expect(fwdAt()).toBeLessThan(pos);
    await fwd.rep.applyWriteReply('events', positions);
    expect(fwdAt()).toBeGreaterThanOrEqual(pos);
  });
});
