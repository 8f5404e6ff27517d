/**
 * Following the events rows on demand (stream-replication.ts): a process
 * that does not write events hears their rows only while a long-poll may
 * wait for them; the events writers always follow each other.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { Notifier } from '../../../src/streams/notifier.js';
import type { NotifiedStream } from '../../../src/streams/notifier-types.js';
import { CacheRegistry } from '../../../src/workers/caches.js';
import { StreamReplicator, type PositionRow } from '../../../src/workers/stream-replication.js';
import { FakeBus } from './fake-bus.js';

const WRITERS: Record<string, string[]> = { events: ['persister'], receipts: ['persister'] };

const running: StreamReplicator[] = [];
afterEach(() => {
  for (const r of running.splice(0)) r.stop();
});

function proc(bus: FakeBus, me: string, db: { positions: PositionRow[]; gate?: Promise<void> }, lingerMs = 60_000, writers = WRITERS) {
  const streams: Partial<Record<NotifiedStream, StreamIdGenerator>> = { events: new StreamIdGenerator(0), receipts: new StreamIdGenerator(0) };
  const notifier = new Notifier(streams);
  const caches = new CacheRegistry();
  let cleared = 0;
  caches.register('test', () => {}, () => void cleared++);
  const transport = bus.transport(me);
  let reads = 0;
  const rep = new StreamReplicator({
    instanceName: me,
    writersOf: (s) => writers[s] ?? ['master'],
    streams,
    notifier,
    transport,
    readPositions: async () => {
      reads++;
      const rows = db.positions;
      await db.gate;
      return rows;
    },
    persistPosition: async () => {},
    caches,
    pollConnectedMs: 1e9,
    eventsLingerMs: lingerMs,
  });
  running.push(rep);
  return { streams, notifier, rep, transport, reads: () => reads, cleared: () => cleared };
}

/** A started persister and a started reader on one fake bus (channels per writer unless told) and one fake database. */
async function persisterAndReader(o: { lingerMs?: number; eventsChannels?: boolean } = {}) {
  const bus = new FakeBus({ eventsChannels: o.eventsChannels ?? true });
  const db: { positions: PositionRow[]; gate?: Promise<void> } = { positions: [] };
  const w = proc(bus, 'persister', db);
  const r = proc(bus, 'reader', db, o.lingerMs);
  await w.rep.start();
  await r.rep.start();
  return { bus, db, w, r };
}

/** The writer persists an event at the next position, records it and notifies. */
async function write(w: ReturnType<typeof proc>, db: { positions: PositionRow[] }, room: string): Promise<number> {
  const gen = w.streams.events!;
  const pos = await gen.withNext(async (p) => p);
  db.positions = [{ stream_name: 'events', instance_name: 'persister', stream_id: pos }];
  w.notifier.notify({ stream: 'events', position: pos, rooms: [room] });
  return pos;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('following events on demand', () => {
  it('a reader does not hear events rows until a long-poll asks; then it reads the positions once and hears them', async () => {
    const { db, w, r } = await persisterAndReader();
    expect(r.rep.followsEvents).toBe(false);
    expect(w.rep.followsEvents).toBe(true);

    await write(w, db, '!a:x');
    expect(r.streams.events!.getCurrent()).toBe(0); // not heard
    const readsBefore = r.reads();
    await r.rep.followEvents(); // subscribed and read the positions
    expect(r.reads()).toBe(readsBefore + 1);
    expect(r.streams.events!.getCurrent()).toBe(1);
    expect(r.rep.followsEvents).toBe(true);
    expect(r.transport.followLog).toEqual(['follow events']);
    // Following now: no second read, and the rows wake long-polls.
    await r.rep.followEvents();
    expect(r.reads()).toBe(readsBefore + 1);
    const woke = r.notifier.waitForChange('@u:x', ['!a:x'], r.notifier.currentToken(), 5000);
    await write(w, db, '!a:x');
    expect(await woke).toBe('change');
    expect(r.streams.events!.getCurrent()).toBe(2);
  });

  it('long-polls arriving together share one subscription and one read, and none goes on before the read is applied', async () => {
    const { db, w, r } = await persisterAndReader();
    await write(w, db, '!a:x');
    const before = r.reads();
    let open!: () => void;
    db.gate = new Promise((resolve) => (open = resolve));
    const done: number[] = [];
    const joins = [0, 1, 2].map((i) => r.rep.followEvents().then(() => void done.push(i)));
    await sleep(20);
    const late = r.rep.followEvents().then(() => void done.push(3)); // subscribed, the read still running
    await sleep(20);
    expect(done).toEqual([]);
    expect(r.rep.followsEvents).toBe(false);
    open();
    await Promise.all([...joins, late]);
    expect(done.sort()).toEqual([0, 1, 2, 3]);
    expect(r.streams.events!.getCurrent()).toBe(1);
    expect(r.reads()).toBe(before + 1);
    expect(r.transport.followLog).toEqual(['follow events']);
  });

  it('rows arriving while it joins are no gap: no cache is cleared', async () => {
    const { db, w, r } = await persisterAndReader();
    await write(w, db, '!a:x'); // missed: 1
    await write(w, db, '!a:x'); // missed: 2
    const cleared = r.cleared();
    let open!: () => void;
    db.gate = new Promise((resolve) => (open = resolve));
    const join = r.rep.followEvents();
    await sleep(10);
    await write(w, db, '!a:x'); // heard during the join, its prev (2) never seen
    open();
    await join;
    expect(r.streams.events!.getCurrent()).toBe(3);
    expect(r.cleared()).toBe(cleared);
  });

  it('a subscription that fails leaves it not following; the next long-poll tries again', async () => {
    const { bus, r } = await persisterAndReader();
    bus.up = false;
    await r.rep.followEvents();
    expect(r.rep.followsEvents).toBe(false);
    bus.up = true;
    await r.rep.followEvents();
    expect(r.rep.followsEvents).toBe(true);
    expect(r.transport.followLog).toEqual(['follow events', 'follow events']);
  });

  it('a long-poll waiting without having asked (it outlasted the linger) makes it follow again', async () => {
    const { db, w, r } = await persisterAndReader({ lingerMs: 0 });
    await r.rep.followEvents();
    for (let i = 0; i < 20 && r.rep.followsEvents; i++) await sleep(100);
    expect(r.rep.followsEvents).toBe(false);
    const since = r.notifier.currentToken();
    const woke = r.notifier.waitForChange('@u:x', ['!a:x'], since, 5000);
    // Written while nobody here follows: the join's read finds it and wakes the long-poll.
    await write(w, db, '!a:x');
    expect(r.streams.events!.getCurrent()).toBe(0);
    const t0 = Date.now();
    expect(await woke).toBe('change');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.rep.followsEvents).toBe(true);
    const again = r.notifier.waitForChange('@u:x', ['!a:x'], r.notifier.currentToken(), 5000);
    await write(w, db, '!a:x');
    expect(await again).toBe('change');
  });

  it('stops following once no long-poll has waited for the linger time, and not while one waits', async () => {
    const { db, w, r } = await persisterAndReader({ lingerMs: 0 });
    await r.rep.followEvents();
    const ac = new AbortController();
    const waiting = r.notifier.waitForChange('@u:x', ['!b:x'], r.notifier.currentToken(), 10_000, ac.signal);
    await sleep(600); // two ticks and more
    expect(r.rep.followsEvents).toBe(true);
    ac.abort();
    expect(await waiting).toBe('aborted');
    for (let i = 0; i < 20 && r.rep.followsEvents; i++) await sleep(100);
    expect(r.rep.followsEvents).toBe(false);
    expect(r.transport.followLog).toEqual(['follow events', 'unfollow events']);
    // Rows are no longer heard; the next long-poll follows again and reads where the stream got to.
    const pos = await write(w, db, '!a:x');
    expect(r.streams.events!.getCurrent()).toBeLessThan(pos);
    await r.rep.followEvents();
    expect(r.rep.followsEvents).toBe(true);
    expect(r.streams.events!.getCurrent()).toBe(pos);
  });

  it('without following, events learnt from the database or a write reply clear no caches and start no catch-up', async () => {
    const { db, w, r } = await persisterAndReader();
    const clearedAtStart = r.cleared();
    await write(w, db, '!a:x');
    await r.rep.catchUp('periodic');
    expect(r.streams.events!.getCurrent()).toBe(1);
    expect(r.cleared()).toBe(clearedAtStart);
    // A forwarded write's answer: applied, and no rows are awaited (CONFIRM_MS would catch up).
    const readsBefore = r.reads();
    await r.rep.applyWriteReply('events', { persister: 2 });
    expect(r.streams.events!.getCurrent()).toBe(2);
    await sleep(1700);
    expect(r.reads()).toBe(readsBefore);
    expect(r.cleared()).toBe(clearedAtStart);
    // Other streams still clear the caches when rows were missed.
    db.positions = [...db.positions, { stream_name: 'receipts', instance_name: 'persister', stream_id: 5 }];
    await r.rep.catchUp('periodic');
    expect(r.cleared()).toBe(clearedAtStart + 1);
  });

  it('an events writer follows the other writers from the start and never hears its own rows', async () => {
    const bus = new FakeBus({ eventsChannels: true });
    const db = { positions: [] as PositionRow[] };
    const w = proc(bus, 'persister', db);
    await w.rep.start();
    expect(w.transport.followLog).toEqual(['follow events']);
    expect(w.transport.follows.size).toBe(0); // the only writer: nobody else to follow
    const reads = w.reads();
    await w.rep.followEvents();
    expect(w.reads()).toBe(reads);
  });

  it('a transport that puts every row on one channel is followed always (as before)', async () => {
    const { db, w, r } = await persisterAndReader({ eventsChannels: false });
    expect(r.rep.followsEvents).toBe(true);
    await write(w, db, '!a:x');
    expect(r.streams.events!.getCurrent()).toBe(1);
    const reads = r.reads();
    await r.rep.followEvents();
    expect(r.reads()).toBe(reads);
  });
});
