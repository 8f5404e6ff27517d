/**
 * EventCreator pipelining: a room's next events are built while its previous
 * batch is still being committed, commit in order (same room in one group:
 * one batch), and fail when the batch they were built on fails.
 */
import { beforeEach, expect, it } from 'vitest';
import { EventCreator, type CreatedEvent } from '../../../src/services/rooms/event-creator.js';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { migrate } from '../../../src/storage/migrate.js';
import { roomsMigrations } from '../../../src/storage/migrations/rooms.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import type { PersistBatch } from '../../../src/storage/rooms/store.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';

const SERVER = 'pipe.test';
const alice = `@alice:${SERVER}`;

/** A store whose commits wait for `open()` and fail for batches holding a body of `failBody`. */
class GatedStore extends SqlRoomStore {
  gate: Promise<void> = Promise.resolve();
  private release: () => void = () => {};
  failBody: string | undefined;
  calls: string[][] = [];

  close(): void {
    this.gate = new Promise((r) => (this.release = r));
  }
  open(): void {
    this.release();
  }

  override async persistEventBatches(batches: readonly PersistBatch[]): Promise<void> {
    const bodies = batches.flatMap((b) => b.events.map((e) => String(e.event.content?.body ?? e.event.type)));
    this.calls.push(bodies);
    await this.gate;
    if (this.failBody && bodies.includes(this.failBody)) throw new Error('injected commit failure');
    await super.persistEventBatches(batches);
  }
}

let store: GatedStore;
let creator: EventCreator;
let roomId: string;
let n = 0;

const send = (body: string): Promise<CreatedEvent> => creator.create({ roomId, type: 'm.room.message', sender: alice, content: { msgtype: 'm.text', body } });

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never: ${what}`);
}

/** Waits until the cached room's newest event is `body` (built, maybe not committed). */
const built = (body: string) => until(`${body} built`, async () => (await creator.getRoomState(roomId))?.extremities[0]?.content?.body === body);
/** Waits until `n` commits have started. */
const committing = (n: number) => until(`${n} commits`, () => store.calls.length === n);

beforeEach(async () => {
  const db = new SqliteDb(':memory:');
  await migrate(db, roomsMigrations);
  store = new GatedStore(db);
  let group = 0;
  creator = new EventCreator({
    store,
    serverName: SERVER,
    signingKey: generateSigningKey('p1'),
    stream: new StreamIdGenerator(0),
    notifier: { notify: () => {} },
    nextStateGroup: () => ++group,
  });
  roomId = `!p${++n}:${SERVER}`;
  await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: alice, content: { creator: alice, room_version: '10' }, roomVersion: '10' });
  await creator.create({ roomId, type: 'm.room.member', stateKey: alice, sender: alice, content: { membership: 'join' } });
  store.calls = [];
});

it('builds the next events while a batch commits, and commits them in order in one batch', async () => {
  store.close();
  const first = send('e1');
  await committing(1);
  const [second, third] = [send('e2'), send('e3')];
  await built('e3');
  expect(store.calls).toEqual([['e1']]); // e2 and e3 were built during e1's commit
  store.open();
  const [a, b, c] = await Promise.all([first, second, third]);
  expect(b.event.prev_events).toEqual([a.eventId]);
  expect(c.event.prev_events).toEqual([b.eventId]);
  expect(store.calls).toEqual([['e1'], ['e2', 'e3']]);
  expect(await store.getForwardExtremities(roomId)).toEqual([c.eventId]);
  expect((await store.getEvents([a.eventId, b.eventId, c.eventId])).size).toBe(3);
});

it('fails the events built on a batch that did not commit, and goes on from the database', async () => {
  const before = (await store.getForwardExtremities(roomId))[0]!;
  store.failBody = 'bad';
  store.close();
  const bad = send('bad');
  await committing(1);
  const onTop = send('on top');
  await built('on top');
  store.open();
  await expect(bad).rejects.toThrow(/injected commit failure/);
  await expect(onTop).rejects.toThrow(/could not be persisted/);
  expect(store.calls.flat()).not.toContain('on top'); // never written
  const next = await send('next');
  expect(next.event.prev_events).toEqual([before]);
  expect(await store.getForwardExtremities(roomId)).toEqual([next.eventId]);
  const room = await creator.getRoomState(roomId);
  expect(room?.extremities.map((e) => e.event_id)).toEqual([next.eventId]);
});
