/**
 * The event persister on each engine: on PostgreSQL two group commits run
 * at once (the store says it can: `concurrentWrites`), on SQLite one; under
 * many concurrent sends into many rooms nothing deadlocks, every event is
 * stored once and each room's timeline is one chain.
 */
import { expect, it } from 'vitest';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { EventCreator, type CreatedEvent } from '../../../src/services/rooms/event-creator.js';
import type { Db, Queryable } from '../../../src/storage/db.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { describeEngines } from '../engines.js';

const SERVER = 'cc.test';
const alice = `@alice:${SERVER}`;

describeEngines('concurrent group commits', (db, engine) => {
  it('says whether it runs write transactions concurrently', () => {
    expect(new SqlRoomStore(db()).concurrentWrites).toBe(engine === 'postgres');
  });

  it('persists every event once under concurrent sends into many rooms, without deadlocks', async () => {
    // Counts the write transactions in flight at once.
    let inFlight = 0;
    let maxInFlight = 0;
    const base = db();
    const counted: Db = Object.create(base, {
      writeOnlyTransaction: {
        value: async (fn: (tx: Queryable) => Promise<void>) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            await base.writeOnlyTransaction!(fn);
          } finally {
            inFlight--;
          }
        },
      },
    });
    const store = new SqlRoomStore(counted);
    let group = (await store.maxStateGroupId()) + 1000;
    const stream = await StreamIdGenerator.fromTables(base, [{ table: 'events', column: 'stream_ordering' }]);
    const creator = new EventCreator({
      store,
      serverName: SERVER,
      signingKey: generateSigningKey('cc'),
      stream,
      notifier: { notify: () => {} },
      nextStateGroup: () => ++group,
    });
    const rooms = Array.from({ length: 12 }, (_, i) => `!cc${i}-${engine}:${SERVER}`);
    await Promise.all(
      rooms.map(async (roomId) => {
        await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: alice, content: { creator: alice, room_version: '10' }, roomVersion: '10' });
        await creator.create({ roomId, type: 'm.room.member', stateKey: alice, sender: alice, content: { membership: 'join' } });
      }),
    );
    // 16 closed-loop senders, each into random rooms, some with state events.
    const sent: Array<{ roomId: string; ev: CreatedEvent }> = [];
    let k = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, s) => {
        for (let i = 0; i < 25; i++) {
          const roomId = rooms[(s * 7 + i * 5) % rooms.length]!;
          const n = k++;
          const ev =
            n % 10 === 0
              ? await creator.create({ roomId, type: 'm.room.topic', stateKey: '', sender: alice, content: { topic: `t${n}` } })
              : await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { msgtype: 'm.text', body: `m${n}` }, txn: { deviceId: 'D', txnId: `t${engine}${n}` } });
          sent.push({ roomId, ev });
        }
      }),
    );
    expect(maxInFlight).toBe(engine === 'postgres' ? 2 : 1);
    const stored = await store.getEvents(sent.map((x) => x.ev.eventId));
    expect(stored.size).toBe(sent.length);
    for (const x of sent) expect(stored.get(x.ev.eventId)!.streamOrdering).toBe(x.ev.streamOrdering);
    for (const roomId of rooms) {
      const timeline = await store.getRoomEventsByStream(roomId, { from: 0, to: Number.MAX_SAFE_INTEGER, limit: 1000, dir: 'f' });
      expect(timeline.length).toBe(2 + sent.filter((x) => x.roomId === roomId).length);
      for (let i = 1; i < timeline.length; i++) expect(timeline[i]!.event.prev_events).toEqual([timeline[i - 1]!.event.event_id]);
      expect(await store.getForwardExtremities(roomId)).toEqual([timeline[timeline.length - 1]!.event.event_id]);
      const topics = sent.filter((x) => x.roomId === roomId && x.ev.event.type === 'm.room.topic');
      if (topics.length) {
        const state = await store.getCurrentStateIds(roomId);
        expect(state.get('m.room.topic\u0000')).toBe(topics[topics.length - 1]!.ev.eventId);
      }
    }
    expect(stream.getCurrent()).toBe(stream.getLastAllocated());
  });
});
