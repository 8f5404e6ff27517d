/**
 * Storage on both engines for the client room API's gaps: user reports
 * (user_reports) and the batched, keyset-continued timestamp lookup that
 * timestamp_to_event filters through history visibility.
 */
import { expect, it } from 'vitest';
import { generateSigningKey } from '../../src/matrix/signing.js';
import { EventCreator } from '../../src/services/rooms/event-creator.js';
import { RoomsExtraStore } from '../../src/storage/rooms-extra/store.js';
import { SqlRoomStore } from '../../src/storage/rooms/sql-store.js';
import { StreamIdGenerator } from '../../src/streams/id-generator.js';
import { describeEngines } from './engines.js';

const SERVER = 'gaps.test';
const alice = `@alice:${SERVER}`;

describeEngines('user reports and timestamp lookups', (db) => {
  it('stores user reports with increasing ids, also when written concurrently', async () => {
    const store = new RoomsExtraStore(db());
    const first = await store.addUserReport({ targetUserId: '@bad:x', userId: '@a:x', reason: 'spam' });
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.addUserReport({ targetUserId: '@bad:x', userId: `@r${i}:x`, reason: '' })),
    );
    expect(new Set([first, ...ids]).size).toBe(9);
    const rows = await store.reportsForUser('@bad:x');
    expect(rows).toHaveLength(9);
    expect(rows[0]).toMatchObject({ id: first, userId: '@a:x', reason: 'spam' });
    expect(rows.slice(1).every((r) => r.reason === '')).toBe(true);
    expect(rows[0]!.receivedTs).toBeGreaterThan(0);
    expect(await store.reportsForUser('@other:x')).toEqual([]);
  });

  it('walks events by timestamp in batches, ties by stream order, both directions', async () => {
    const store = new SqlRoomStore(db());
    const stream = await StreamIdGenerator.fromTables(db(), [{ table: 'events', column: 'stream_ordering' }]);
    let group = await store.maxStateGroupId();
    const creator = new EventCreator({
      store,
      serverName: SERVER,
      signingKey: generateSigningKey('t1'),
      stream,
      notifier: { notify: () => {} },
      nextStateGroup: () => ++group,
    });
    const roomId = `!ts:${SERVER}`;
    await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: alice, content: { creator: alice, room_version: '10' }, roomVersion: '10' });
    await creator.create({ roomId, type: 'm.room.member', stateKey: alice, sender: alice, content: { membership: 'join' } });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: `m${i}` } })).eventId);
    // Timestamps (the column is what the lookup reads): 1000, 1000, 1000, 2000, 2000, 3000, 4000.
    const tss = [1000, 1000, 1000, 2000, 2000, 3000, 4000];
    for (let i = 0; i < ids.length; i++) await db().execute('UPDATE events SET origin_server_ts = ? WHERE event_id = ?', [tss[i], ids[i]]);
    await db().execute('UPDATE events SET origin_server_ts = 1 WHERE room_id = ? AND type <> ?', [roomId, 'm.room.message']);

    const walk = async (ts: number, dir: 'f' | 'b', batch: number) => {
      const out: string[] = [];
      let after: { ts: number; stream: number } | undefined;
      for (;;) {
        const got = await store.eventsAtTimestamp(roomId, ts, dir, batch, after);
        out.push(...got.map((e) => e.event.event_id));
        if (got.length < batch) return out;
        const last = got[got.length - 1]!;
        const row = await db().queryOne('SELECT origin_server_ts FROM events WHERE event_id = ?', [last.event.event_id]);
        after = { ts: Number(row!.origin_server_ts), stream: last.streamOrdering };
      }
    };
    expect(await walk(1000, 'f', 2)).toEqual(ids);
    expect(await walk(2000, 'f', 1)).toEqual(ids.slice(3));
    expect(await walk(2500, 'b', 2)).toEqual([ids[4], ids[3], ids[2], ids[1], ids[0], ...(await walk(1, 'b', 10))]);
    expect(await walk(4001, 'f', 3)).toEqual([]);
    expect((await store.eventsAtTimestamp(roomId, 3000, 'b', 1))[0]!.event.event_id).toBe(ids[5]);

    // Events outside the timeline (soft-failed, rejected, outliers) are skipped
    // without cutting a batch short: a short batch means the walk is over.
    const hidden = [ids[1], ids[2], ids[4]];
    await db().execute('UPDATE events SET soft_failed = 1 WHERE event_id = ?', [hidden[0]]);
    await db().execute("UPDATE events SET rejected_reason = 'auth' WHERE event_id = ?", [hidden[1]]);
    await db().execute('UPDATE events SET outlier = 1 WHERE event_id = ?', [hidden[2]]);
    const visible = ids.filter((id) => !hidden.includes(id));
    expect((await store.eventsAtTimestamp(roomId, 1000, 'f', 2)).map((e) => e.event.event_id)).toEqual(visible.slice(0, 2));
    expect(await walk(1000, 'f', 1)).toEqual(visible);
    expect(await walk(4000, 'b', 2)).toEqual([...visible].reverse().concat(await walk(1, 'b', 10)));
  });

  it("finds a room's events by timestamp also when the server's other events around that time are many", async () => {
    // The room's own events only, whatever the server's other rooms hold around that time.
    const store = new SqlRoomStore(db());
    const cols = 'stream_ordering, event_id, room_id, type, sender, depth, topological_ordering, origin_server_ts, json, received_ts';
    const base = 1_000_000;
    let pos = (await store.maxStreamOrdering()) + 1;
    const row = (room: string, ts: number) => {
      const n = pos++;
      return [n, `$q${n}`, room, 'm.room.message', alice, n, n, ts, JSON.stringify({ event_id: `$q${n}`, type: 'm.room.message', sender: alice, content: {} }), 0];
    };
    const quiet = `!quiet:${SERVER}`;
    const rows = [row(quiet, base + 1)];
    for (let i = 0; i < 1500; i++) rows.push(row(`!busy${i % 7}:${SERVER}`, base + 10 + i));
    rows.push(row(quiet, base + 5000), row(quiet, base + 5001));
    await db().transaction(async (tx) => {
      for (const part of [rows.slice(0, 500), rows.slice(500, 1000), rows.slice(1000)]) {
        await tx.execute(`INSERT INTO events (${cols}) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`, part.flat());
      }
    });
    const ids = (evs: Array<{ event: { event_id: string } }>) => evs.map((e) => e.event.event_id);
    const [first, later, last] = [rows[0]![1], rows[1501]![1], rows[1502]![1]];
    expect(ids(await store.eventsAtTimestamp(quiet, base + 2, 'f', 1))).toEqual([later]);
    expect(ids(await store.eventsAtTimestamp(quiet, base + 2, 'f', 5))).toEqual([later, last]);
    expect(ids(await store.eventsAtTimestamp(quiet, base + 4999, 'b', 2))).toEqual([first]);
    expect(ids(await store.eventsAtTimestamp(quiet, base + 1, 'f', 1))).toEqual([first]);
    expect(ids(await store.eventsAtTimestamp(quiet, base + 6000, 'b', 3))).toEqual([last, later, first]);
    expect(ids(await store.eventsAtTimestamp(`!busy3:${SERVER}`, base + 13, 'f', 2))).toEqual([rows[4]![1], rows[11]![1]]);
  });
});
