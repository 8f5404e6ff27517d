/**
 * Push rows: the migration of per-recipient rows, rows written in the
 * events' own transaction (never an event without them), and counting
 * defaults ⊕ exceptions in the database.
 */
import { expect, it } from 'vitest';
import { generateSigningKey } from '../../src/matrix/signing.js';
import { EventCreator } from '../../src/services/rooms/event-creator.js';
import { migrate } from '../../src/storage/migrate.js';
import { PushStore, type PushRow } from '../../src/storage/live/push-store.js';
import { SqlRoomStore } from '../../src/storage/rooms/sql-store.js';
import type { ExtraRows } from '../../src/storage/rooms/store.js';
import { StreamIdGenerator } from '../../src/streams/id-generator.js';
import { describeEngines, migrateThrough } from './engines.js';
import { pino } from 'pino';
import type { AccountDataService } from '../../src/services/account-data/account-data-service.js';
import { PushService } from '../../src/services/push/push-service.js';
import type { PushRulesService } from '../../src/services/push/push-rules-service.js';
import type { ReceiptsService } from '../../src/services/receipts/receipts-service.js';
import type { ReceiptRow } from '../../src/storage/live/receipts-store.js';
import type { RoomQueries } from '../../src/storage/live/room-queries.js';

const SERVER = 'push.test';
const alice = `@alice:${SERVER}`;
const bob = `@bob:${SERVER}`;
const carol = `@carol:${SERVER}`;
const dan = `@dan:${SERVER}`;

describeEngines(
  'push store',
  (db) => {
    it('migrates per-recipient rows to exception rows that keep counting', async () => {
      await migrateThrough(db(), 'live/001_streams');
      await db().execute(
        `INSERT INTO event_push_actions (user_id, event_id, room_id, stream_ordering, thread_id, notif, highlight, actions, received_ts)
         VALUES (?, '$old1', '!old:push.test', 5, 'main', 1, 0, '["notify"]', 1), (?, '$old2', '!old:push.test', 6, 'main', 1, 1, '["notify",{"set_tweak":"highlight"}]', 2)`,
        [dan, dan],
      );
      await migrate(db());
      const store = new PushStore(db());
      const counts = await store.countUnread(dan, [{ roomId: '!old:push.test', after: 0, threads: [] }]);
      expect(counts).toEqual([{ roomId: '!old:push.test', threadId: 'main', notif: 2, highlight: 1 }]);
      const list = await store.listNotifications(dan, new Map(), undefined, 10, false);
      expect(list.map((n) => n.eventId)).toEqual(['$old2', '$old1']);
      expect(await db().query("SELECT name FROM schema_migrations WHERE name = 'live/002_push_defaults_exceptions'")).toHaveLength(1);
    });

    it('writes push rows in the events transaction: a failed write fails the batch and commits no event', async () => {
      const store = new SqlRoomStore(db());
      const push = new PushStore(db());
      const stream = await StreamIdGenerator.fromTables(db(), [{ table: 'events', column: 'stream_ordering' }]);
      let group = await store.maxStateGroupId();
      let fail = false;
      const aborted: string[] = [];
      const write: ExtraRows<PushRow>['write'] = async (tx, rows) => {
        await push.insertPushRows(tx, rows);
        if (fail) throw new Error('push rows failed');
      };
      const creator = new EventCreator({
        store,
        serverName: SERVER,
        signingKey: generateSigningKey('t1'),
        stream,
        notifier: { notify: () => {} },
        nextStateGroup: () => ++group,
        batchRows: {
          prepare: async (roomId, events) => [
            {
              write,
              rows: events.map((e) => ({
                kind: 'default' as const,
                eventId: e.eventId,
                roomId,
                streamOrdering: e.streamOrdering,
                threadId: 'main',
                sender: e.event.sender,
                highlight: false,
                actions: ['notify'],
                receivedTs: 1,
              })),
            },
          ],
          aborted: (roomId) => aborted.push(roomId),
        },
      });
      const roomId = `!atomic:${SERVER}`;
      await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: alice, content: { creator: alice, room_version: '10' }, roomVersion: '10' });
      await creator.create({ roomId, type: 'm.room.member', stateKey: alice, sender: alice, content: { membership: 'join' } });
      const ok = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'kept' } });
      const rows = await db().query('SELECT event_id FROM event_push_defaults WHERE room_id = ? ORDER BY stream_ordering', [roomId]);
      expect(rows.map((r) => r.event_id)).toContain(ok.eventId);
      fail = true;
      await expect(creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'lost' } })).rejects.toThrow('push rows failed');
      expect(aborted).toEqual([roomId]);
      const lost = await db().query("SELECT event_id FROM events WHERE room_id = ? AND json LIKE '%\"lost\"%'", [roomId]);
      expect(lost).toEqual([]);
      const lostRows = await db().query('SELECT COUNT(*) AS n FROM event_push_defaults WHERE room_id = ?', [roomId]);
      expect(Number(lostRows[0]!.n)).toBe(rows.length);
      fail = false;
      const again = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'after' } });
      expect((await store.getEvent(again.eventId))?.event.prev_events).toEqual([ok.eventId]);
    });

    it('counts defaults after the join, without the sender, replaced by exceptions', async () => {
      const push = new PushStore(db());
      const roomId = `!count:${SERVER}`;
      // Bob joined at 100, left at 103 and came back at 105 (a profile change at 107); Carol joined at 101.
      const member = (eventId: string, userId: string, membership: string, so: number) =>
        db().execute(
          `INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, stream_ordering) VALUES (?, ?, ?, ?, ?, ?)`,
          [eventId, roomId, userId, userId, membership, so],
        );
      await member('$bj', bob, 'join', 100);
      await member('$cj', carol, 'join', 101);
      await member('$bl', bob, 'leave', 103);
      await member('$bj2', bob, 'join', 105);
      await member('$bp', bob, 'join', 107);
      await db().execute(`INSERT INTO current_membership (room_id, user_id, membership, event_id, stream_ordering) VALUES (?, ?, 'join', ?, ?), (?, ?, 'join', ?, ?)`, [
        roomId, bob, '$bp', 107, roomId, carol, '$cj', 101,
      ]);
      expect(await push.joinedSince(bob, [roomId, '!other:x'])).toEqual(new Map([[roomId, 105]]));
      expect(await push.joinedSince(carol)).toEqual(new Map([[roomId, 101]]));
      const d = (so: number, sender = alice, threadId = 'main', highlight = false): PushRow => ({
        kind: 'default', eventId: `$e${so}`, roomId, streamOrdering: so, threadId, sender, highlight, actions: ['notify'], receivedTs: so,
      });
      const x = (userId: string, so: number, notif: boolean, highlight = false): PushRow => ({
        kind: 'exception', userId, eventId: `$e${so}`, roomId, streamOrdering: so, threadId: 'main', notif, highlight, actions: notif ? ['notify'] : [], receivedTs: so,
      });
      await db().transaction((tx) =>
        push.insertPushRows(tx, [d(102), d(104), d(106), d(108, bob), d(109), x(bob, 109, false), d(110, alice, '$root'), d(111, alice, 'main', true), x(carol, 112, true, true)]),
      );
      const bobCounts = await push.countUnread(bob, [{ roomId, after: 105, threads: [] }]);
      // 106 and 111 (highlight) in main, 110 in the thread; 108 is his own, 109 suppressed.
      expect(bobCounts.sort((a, b) => a.threadId.localeCompare(b.threadId))).toEqual([
        { roomId, threadId: '$root', notif: 1, highlight: 0 },
        { roomId, threadId: 'main', notif: 2, highlight: 1 },
      ]);
      const carolCounts = await push.countUnread(carol, [{ roomId, after: 101, threads: [['$root', 110]] }]);
      expect(carolCounts).toEqual([{ roomId, threadId: 'main', notif: 7, highlight: 2 }]);
      const list = await push.listNotifications(carol, await push.joinedSince(carol), undefined, 3, false);
      expect(list.map((n) => n.streamOrdering)).toEqual([112, 111, 110]);
      const page2 = await push.listNotifications(carol, await push.joinedSince(carol), 110, 100, true);
      expect(page2.map((n) => n.streamOrdering)).toEqual([]);
      const hl = await push.listNotifications(carol, await push.joinedSince(carol), undefined, 100, true);
      expect(hl.map((n) => n.streamOrdering)).toEqual([112, 111]);
      const bobList = await push.listNotifications(bob, await push.joinedSince(bob), undefined, 100, false);
      expect(bobList.map((n) => n.streamOrdering)).toEqual([111, 110, 106]);
    });

    it('unread counts kept per user and room are brought forward with the new push rows of the room, as a fresh count gives them', async () => {
      await migrate(db());
      const push = new PushStore(db());
      const roomId = `!forward:${SERVER}`;
      await db().execute(`INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, stream_ordering) VALUES ('$fbj', ?, ?, ?, 'join', 100)`, [roomId, bob, bob]);
      await db().execute(`INSERT INTO current_membership (room_id, user_id, membership, event_id, stream_ordering) VALUES (?, ?, 'join', '$fbj', 100)`, [roomId, bob]);
      let receipts: ReceiptRow[] = [];
      const receiptsSource = { readReceipts: async () => receipts } as unknown as ReceiptsService;
      const service = (store: PushStore) =>
        new PushService(store, {} as RoomQueries, {} as PushRulesService, receiptsSource, {} as AccountDataService, SERVER, pino({ level: 'silent' }));
      // Counts every read of the store made by the caching service.
      const reads: string[] = [];
      const spied = new Proxy(push, {
        get: (target, key, recv) => {
          const v = Reflect.get(target, key, recv);
          return typeof v === 'function' ? (...args: unknown[]) => (reads.push(String(key)), v.apply(target, args)) : v;
        },
      });
      const cached = service(spied);
      const membershipAt = new Map([[roomId, 100]]);
      let moved: Set<string> | undefined = new Set([roomId]);
      const at = (events: number, receiptsPos = 1) => ({ events, receipts: receiptsPos, roomsWithEvents: async () => moved });
      const check = async (events: number, receiptsPos = 1) => {
        const got = await cached.getUnreadCountsForRooms(bob, [roomId], membershipAt, at(events, receiptsPos));
        const fresh = await service(push).getUnreadCountsForRooms(bob, [roomId]);
        expect(got).toEqual(fresh);
        return got.get(roomId)!;
      };
      const d = (so: number, sender = alice, threadId = 'main', highlight = false): PushRow => ({
        kind: 'default', eventId: `$f${so}`, roomId, streamOrdering: so, threadId, sender, highlight, actions: ['notify'], receivedTs: so,
      });
      const x = (userId: string, so: number, notif: boolean, highlight = false, threadId = 'main'): PushRow => ({
        kind: 'exception', userId, eventId: `$f${so}`, roomId, streamOrdering: so, threadId, notif, highlight, actions: notif ? ['notify'] : [], receivedTs: so,
      });
      await db().transaction((tx) => push.insertPushRows(tx, [d(102), d(103, bob), x(bob, 104, true, true), d(105, alice, '$t')]));
      expect(await check(105)).toEqual({ notification_count: 2, highlight_count: 1, threads: { $t: { notification_count: 1, highlight_count: 0 } } });
      expect(reads).toContain('countUnread');

      // New rows: an exception suppressing a default, a highlighted thread reply, another user's exception, a mention.
      await db().transaction((tx) =>
        push.insertPushRows(tx, [d(106), d(107), x(bob, 107, false), d(108, alice, '$t', true), x(carol, 109, true, true), d(110), x(bob, 110, true, true)]),
      );
      reads.length = 0;
      expect(await check(110)).toEqual({ notification_count: 4, highlight_count: 2, threads: { $t: { notification_count: 2, highlight_count: 1 } } });
      expect(reads).toEqual(['pushRowsInRange']); // brought forward, not counted again
      // Nothing new in the room: no read at all.
      moved = new Set();
      reads.length = 0;
      expect((await check(115)).notification_count).toBe(4);
      expect(reads).toEqual([]);
      // Unknown which rooms moved: counted afresh.
      moved = undefined;
      await db().transaction((tx) => push.insertPushRows(tx, [d(116)]));
      reads.length = 0;
      expect((await check(116)).notification_count).toBe(5);
      expect(reads).toContain('countUnread');
      moved = new Set([roomId]);
      // A receipt (the receipts stream moved) changes the range: counted afresh after it.
      receipts = [{ roomId, receiptType: 'm.read', userId: bob, threadId: '', eventId: '$f107', eventStreamOrdering: 107, ts: 1, streamId: 2 }];
      reads.length = 0;
      expect(await check(116, 2)).toEqual({ notification_count: 2, highlight_count: 1, threads: { $t: { notification_count: 1, highlight_count: 1 } } });
      expect(reads).toContain('countUnread');
      // More rows in between than are read to bring counts forward: counted afresh.
      const many: PushRow[] = [];
      for (let so = 200; so < 800; so++) many.push(d(so));
      await db().transaction((tx) => push.insertPushRows(tx, many));
      reads.length = 0;
      expect((await check(800, 2)).notification_count).toBe(602);
      expect(reads).toEqual(['pushRowsInRange', 'countUnread']);
      // Rows beyond the position asked for are not counted yet.
      await db().transaction((tx) => push.insertPushRows(tx, [d(801), d(802)]));
      const early = await cached.getUnreadCountsForRooms(bob, [roomId], membershipAt, at(801, 2));
      expect(early.get(roomId)!.notification_count).toBe(603);
      expect((await check(802, 2)).notification_count).toBe(604);
    });

    it('with several events writers, counts each room at its own bound and keeps the counts', async () => {
      await migrate(db());
      const push = new PushStore(db());
      const a = `!wa:${SERVER}`;
      const b = `!wb:${SERVER}`;
      for (const roomId of [a, b]) {
        await db().execute(`INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, stream_ordering) VALUES (?, ?, ?, ?, 'join', 100)`, [`$j${roomId}`, roomId, bob, bob]);
        await db().execute(`INSERT INTO current_membership (room_id, user_id, membership, event_id, stream_ordering) VALUES (?, ?, 'join', ?, 100)`, [roomId, bob, `$j${roomId}`]);
      }
      const reads: Array<[string, unknown[]]> = [];
      const spied = new Proxy(push, {
        get: (target, key, recv) => {
          const v = Reflect.get(target, key, recv);
          return typeof v === 'function' ? (...args: unknown[]) => (reads.push([String(key), args]), v.apply(target, args)) : v;
        },
      });
      const receiptsSource = { readReceipts: async () => [] } as unknown as ReceiptsService;
      const service = new PushService(spied, {} as RoomQueries, {} as PushRulesService, receiptsSource, {} as AccountDataService, SERVER, pino({ level: 'silent' }));
      const d = (roomId: string, so: number): PushRow => ({
        kind: 'default', eventId: `$w${so}`, roomId, streamOrdering: so, threadId: 'main', sender: alice, highlight: false, actions: ['notify'], receivedTs: so,
      });
      // Room a's writer is at 106 (its rows 102 and 106 are covered); room b's writer has committed 103
      // and is writing 105, which the response does not cover (b counts at the minimum, 104).
      await db().transaction((tx) => push.insertPushRows(tx, [d(a, 102), d(b, 103), d(b, 105), d(a, 106)]));
      const membershipAt = new Map([[a, 100], [b, 100]]);
      let moved = new Set<string>();
      const counts = async (at: { events: number; roomEvents?: ReadonlyMap<string, number> }) => {
        const got = await service.getUnreadCountsForRooms(bob, [a, b], membershipAt, { ...at, receipts: 1, roomsWithEvents: async () => moved });
        return [got.get(a)!.notification_count, got.get(b)!.notification_count];
      };
      expect(await counts({ events: 104, roomEvents: new Map([[a, 106]]) })).toEqual([2, 1]);
      // One count for both rooms, each with its own bound.
      const count = reads.filter(([k]) => k === 'countUnread');
      expect(count).toHaveLength(1);
      expect(count[0]![1][2]).toEqual(new Map([[a, 106], [b, 104]]));
      // b's writer finishes 105 and everything moves to 106: a is kept, b brought forward from 104.
      reads.length = 0;
      moved = new Set([b]);
      expect(await counts({ events: 106 })).toEqual([2, 2]);
      expect(reads).toEqual([['pushRowsInRange', [b, 104, 106, expect.any(Number)]]]);
      // A fresh count agrees.
      const fresh = await push.countUnread(bob, [a, b].map((roomId) => ({ roomId, after: 100, threads: [] })), 106);
      expect(fresh.map((c) => [c.roomId, c.notif]).sort()).toEqual([[a, 2], [b, 2]].sort());
    });
  },
  { migrate: false },
);
