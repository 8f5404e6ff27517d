/**
 * EventCreator with a store that runs write transactions concurrently: two
 * group commits in flight at most, never the same room in both; a room's
 * batches commit in the order they were built; a batch built on one that
 * failed fails; an answer waits until every lower position has finished;
 * nothing acknowledged is lost or written twice. The store holds each
 * commit open until the test releases it.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { EventCreator, type CreatedEvent } from '../../../src/services/rooms/event-creator.js';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { migrate } from '../../../src/storage/migrate.js';
import { roomsMigrations } from '../../../src/storage/migrations/rooms.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import type { PersistBatch } from '../../../src/storage/rooms/store.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';

const SERVER = 'conc.test';
const alice = `@alice:${SERVER}`;

interface Call {
  rooms: string[];
  bodies: string[];
  /** Lets the commit go on (then it fails if `fail` is set). */
  release: (fail?: boolean) => void;
  settled: boolean;
}

/** A store whose commits wait to be released one by one; it checks that no room is in two commits at once. */
class HeldStore extends SqlRoomStore {
  concurrent = true;
  hold = true;
  failBody: string | undefined;
  calls: Call[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly roomsInFlight = new Set<string>();
  violations: string[] = [];

  override get concurrentWrites(): boolean {
    return this.concurrent;
  }

  override async persistEventBatches(batches: readonly PersistBatch[]): Promise<void> {
    const rooms = batches.map((b) => b.roomId);
    const bodies = batches.flatMap((b) => b.events.map((e) => String(e.event.content?.body ?? e.event.type)));
    for (const r of rooms) if (this.roomsInFlight.has(r)) this.violations.push(`${r} in two commits at once`);
    for (const r of rooms) this.roomsInFlight.add(r);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let release!: (fail?: boolean) => void;
    const gate = new Promise<boolean>((r) => (release = (fail) => r(!!fail)));
    const call: Call = { rooms, bodies, release, settled: false };
    this.calls.push(call);
    try {
      const fail = this.hold ? await gate : false;
      if (fail || (this.failBody && bodies.includes(this.failBody))) throw new Error('injected commit failure');
      await super.persistEventBatches(batches);
    } finally {
      call.settled = true;
      this.inFlight--;
      for (const r of rooms) this.roomsInFlight.delete(r);
    }
  }
}

let store: HeldStore;
let stream: StreamIdGenerator;
let creator: EventCreator;
let n = 0;

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never: ${what}`);
}

const send = (roomId: string, body: string): Promise<CreatedEvent> =>
  creator.create({ roomId, type: 'm.room.message', sender: alice, content: { msgtype: 'm.text', body } });

/** Waits until `k` commits have started. */
const committing = (k: number) => until(`${k} commits`, () => store.calls.length >= k);
/** Waits until the cached room's newest event is `body` (built, maybe not committed). */
const built = (roomId: string, body: string) =>
  until(`${body} built`, async () => (await creator.getRoomState(roomId))?.extremities[0]?.content?.body === body);

async function newRoom(): Promise<string> {
  const roomId = `!c${++n}:${SERVER}`;
  const hold = store.hold;
  store.hold = false;
  await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: alice, content: { creator: alice, room_version: '10' }, roomVersion: '10' });
  await creator.create({ roomId, type: 'm.room.member', stateKey: alice, sender: alice, content: { membership: 'join' } });
  store.hold = hold;
  return roomId;
}

function setup(concurrent: boolean): void {
  beforeEach(async () => {
    const db = new SqliteDb(':memory:');
    await migrate(db, roomsMigrations);
    store = new HeldStore(db);
    store.concurrent = concurrent;
    let group = 0;
    stream = new StreamIdGenerator(0);
    creator = new EventCreator({
      store,
      serverName: SERVER,
      signingKey: generateSigningKey('c1'),
      stream,
      notifier: { notify: () => {} },
      nextStateGroup: () => ++group,
    });
  });
}

/** Whether the promise has settled (after letting pending callbacks run). */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

describe('two group commits in flight (a store with concurrent write transactions)', () => {
  setup(true);

  it('starts a second group while the first is in flight, with other rooms only', async () => {
    const [a, b] = [await newRoom(), await newRoom()];
    store.calls = [];
    const a1 = send(a, 'a1');
    await committing(1);
    const a2 = send(a, 'a2');
    const b1 = send(b, 'b1');
    await committing(2);
    await built(a, 'a2');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // b1 is committing next to a1; a2 waits for a1's group (same room).
    expect(store.calls.map((c) => c.bodies)).toEqual([['a1'], ['b1']]);
    store.calls[1]!.release();
    await until('b1 committed', () => store.calls[1]!.settled);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // a1 still in flight: a2 is still not in any commit.
    expect(store.calls.map((c) => c.bodies)).toEqual([['a1'], ['b1']]);
    store.calls[0]!.release();
    const first = await a1;
    await b1;
    await committing(3);
    expect(store.calls[2]!.bodies).toEqual(['a2']);
    store.calls[2]!.release();
    const second = await a2;
    expect(second.event.prev_events).toEqual([first.eventId]);
    expect(await store.getForwardExtremities(a)).toEqual([second.eventId]);
    expect(store.maxInFlight).toBe(2);
    expect(store.violations).toEqual([]);
  });

  it('never has more than two groups in flight', async () => {
    const rooms = [await newRoom(), await newRoom(), await newRoom()];
    store.calls = [];
    const first = send(rooms[0]!, 'x0');
    await committing(1);
    const second = send(rooms[1]!, 'x1');
    await committing(2);
    const third = send(rooms[2]!, 'x2');
    await built(rooms[2]!, 'x2');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(store.calls.length).toBe(2);
    store.calls[0]!.release();
    await first;
    await committing(3);
    expect(store.calls[2]!.bodies).toEqual(['x2']);
    store.calls[1]!.release();
    store.calls[2]!.release();
    await Promise.all([second, third]);
    expect(store.maxInFlight).toBe(2);
  });

  it('answers a batch that committed before a lower position only once that one has finished', async () => {
    const [a, b] = [await newRoom(), await newRoom()];
    store.calls = [];
    const low = send(a, 'low');
    await committing(1);
    const high = send(b, 'high');
    await committing(2);
    store.calls[1]!.release(); // the higher positions commit first
    await until('high committed', () => store.calls[1]!.settled);
    // Committed, but readers do not see it yet (`low` is below it, in flight): not answered.
    const inDb = await store.getRoomEventsByStream(b, { from: 0, to: Number.MAX_SAFE_INTEGER, limit: 10, dir: 'f' });
    expect(inDb.map((e) => e.event.content?.body)).toContain('high');
    expect(stream.getCurrent()).toBeLessThan(stream.getLastAllocated());
    expect(await isSettled(high)).toBe(false);
    store.calls[0]!.release();
    const [l, h] = await Promise.all([low, high]);
    expect(l.streamOrdering).toBeLessThan(h.streamOrdering);
    expect(stream.getCurrent()).toBeGreaterThanOrEqual(h.streamOrdering);
  });

  it('a failing group fails alone (retried batch by batch) and fails the batches built on it, in whatever order the groups end', async () => {
    const [a, b, c] = [await newRoom(), await newRoom(), await newRoom()];
    const beforeA = (await store.getForwardExtremities(a))[0]!;
    store.calls = [];
    store.failBody = 'bad';
    const bad = send(a, 'bad');
    const c1 = send(c, 'c1'); // same group as `bad`: retried alone, commits
    await committing(1);
    expect(store.calls[0]!.bodies.sort()).toEqual(['bad', 'c1']);
    const onTop = send(a, 'on top'); // built on `bad`, waits for its group
    const b1 = send(b, 'b1'); // the second group
    await committing(2);
    await built(a, 'on top');
    expect(store.calls[1]!.bodies).toEqual(['b1']);
    store.hold = false; // the retries go through at once
    store.calls[0]!.release(true); // the first group fails before the second ends
    await expect(bad).rejects.toThrow(/injected commit failure/);
    await expect(onTop).rejects.toThrow(/could not be persisted/);
    await c1;
    expect(await isSettled(b1)).toBe(false);
    store.calls[1]!.release();
    await b1;
    expect(store.calls.flatMap((c) => c.bodies)).not.toContain('on top'); // never written
    // The room goes on from the database.
    const next = await send(a, 'next');
    expect(next.event.prev_events).toEqual([beforeA]);
    expect(await store.getForwardExtremities(a)).toEqual([next.eventId]);
    expect(store.violations).toEqual([]);
  });

  it('a failing second group does not touch the first, and its dependants fail', async () => {
    const [a, b] = [await newRoom(), await newRoom()];
    store.calls = [];
    const a1 = send(a, 'a1');
    await committing(1);
    const b1 = send(b, 'b1');
    await committing(2);
    const b2 = send(b, 'b2');
    await built(b, 'b2');
    store.calls[1]!.release(true);
    await expect(b1).rejects.toThrow(/injected commit failure/);
    await expect(b2).rejects.toThrow(/could not be persisted/);
    expect(await isSettled(a1)).toBe(false);
    store.calls[0]!.release();
    await a1;
    expect(store.violations).toEqual([]);
  });

  it('loses and duplicates nothing under many concurrent sends with random commit times and failures', async () => {
    const rooms: string[] = [];
    for (let i = 0; i < 6; i++) rooms.push(await newRoom());
    store.calls = [];
    store.hold = true;
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    // Releases each commit after a random number of turns; one in seven fails.
    let stop = false;
    const releaser = (async () => {
      const waiting = new Map<Call, number>();
      while (!stop) {
        for (const c of store.calls) if (!c.settled && !waiting.has(c)) waiting.set(c, Math.floor(rand() * 6));
        for (const [c, t] of waiting) {
          if (t <= 0) {
            waiting.delete(c);
            c.release(rand() < 1 / 7);
          } else waiting.set(c, t - 1);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const sends: Array<{ room: string; body: string; p: Promise<CreatedEvent> }> = [];
    for (let k = 0; k < 300; k++) {
      const room = rooms[Math.floor(rand() * rooms.length)]!;
      const body = `m${k}`;
      const p = send(room, body);
      p.catch(() => {}); // looked at below (allSettled)
      sends.push({ room, body, p });
      if (rand() < 0.3) await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.allSettled(sends.map((s) => s.p));
    stop = true;
    await releaser;
    expect(store.violations).toEqual([]);
    expect(store.maxInFlight).toBe(2);
    const ok = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ ...sends[i]!, ev: r.value }] : []));
    const failed = results.filter((r) => r.status === 'rejected');
    expect(ok.length).toBeGreaterThan(100);
    expect(failed.length).toBeGreaterThan(0);
    // Every acknowledged event is stored once, at its position; positions are unique.
    const stored = await store.getEvents(ok.map((o) => o.ev.eventId));
    expect(stored.size).toBe(ok.length);
    for (const o of ok) expect(stored.get(o.ev.eventId)?.streamOrdering).toBe(o.ev.streamOrdering);
    expect(new Set(ok.map((o) => o.ev.streamOrdering)).size).toBe(ok.length);
    // Per room: the stored timeline is a chain (each event's prev_events is the one stored before it).
    for (const room of rooms) {
      const timeline = await store.getRoomEventsByStream(room, { from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1000, dir: 'f' });
      for (let i = 1; i < timeline.length; i++) expect(timeline[i]!.event.prev_events).toEqual([timeline[i - 1]!.event.event_id]);
      expect(await store.getForwardExtremities(room)).toEqual([timeline[timeline.length - 1]!.event.event_id]);
      // The acknowledged events of the room are stored, in the order they were sent.
      const acked = ok.filter((o) => o.room === room).map((o) => o.ev.eventId);
      const storedMessages = timeline.filter((e) => e.event.type === 'm.room.message').map((e) => e.event.event_id);
      expect(storedMessages).toEqual(acked);
    }
    // No event that was refused is stored.
    const refusedBodies = new Set(results.flatMap((r, i) => (r.status === 'rejected' ? [sends[i]!.body] : [])));
    for (const room of rooms) {
      const timeline = await store.getRoomEventsByStream(room, { from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1000, dir: 'f' });
      for (const e of timeline) expect(refusedBodies.has(String(e.event.content?.body))).toBe(false);
    }
    expect(stream.getCurrent()).toBe(stream.getLastAllocated());
  });
});

describe('one group commit in flight (a store with a single writer)', () => {
  setup(false);

  it('does not start a second group while one is in flight, even for other rooms', async () => {
    const [a, b] = [await newRoom(), await newRoom()];
    store.calls = [];
    const a1 = send(a, 'a1');
    await committing(1);
    const b1 = send(b, 'b1');
    await built(b, 'b1');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(store.calls.map((c) => c.bodies)).toEqual([['a1']]);
    store.calls[0]!.release();
    await a1;
    await committing(2);
    expect(store.calls[1]!.bodies).toEqual(['b1']);
    store.calls[1]!.release();
    await b1;
    expect(store.maxInFlight).toBe(1);
  });
});
