/**
 * rooms/005 on a database that already holds events: the state group and
 * the sender's txn id move onto the events rows, the tables and indexes
 * that cost a page per event are gone or narrower, and the stores read and
 * write the converted data.
 */
import { expect, it } from 'vitest';
import { migrate } from '../../../src/storage/migrate.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { SyncStore } from '../../../src/storage/sync/sync-store.js';
import { describeEngines, migrateThrough } from '../engines.js';

const room = '!old:mig.test';
const alice = '@alice:mig.test';
const bob = '@bob:mig.test';

const EVENT_COLS = `stream_ordering, event_id, room_id, type, state_key, sender, depth, topological_ordering, origin_server_ts, json,
  outlier, rejected_reason, soft_failed, redacted_by, contains_url, relates_to_id, rel_type, instance_name, received_ts, unsigned_extra`;

function eventRow(n: number, sender: string, type = 'm.room.message', stateKey: string | null = null): unknown[] {
  const ev = { event_id: `$e${n}`, room_id: room, type, sender, content: { body: `m${n}` }, origin_server_ts: 1000 * n, depth: n, ...(stateKey !== null ? { state_key: stateKey } : {}) };
  return [n, ev.event_id, room, type, stateKey, sender, n, n, ev.origin_server_ts, JSON.stringify(ev), 0, null, 0, null, 0, null, null, 'master', 1000 * n, null];
}

describeEngines(
  'rooms/005 on existing data',
  (db, engine) => {
    it('moves state groups and txn ids onto the events rows and keeps every read working', async () => {
      await migrateThrough(db(), 'rooms/004_partial_relates_index');
      const rows = [eventRow(1, alice, 'm.room.create', ''), eventRow(2, alice), eventRow(3, bob), eventRow(4, alice), eventRow(5, alice, 'm.room.topic', '')];
      for (const r of rows) await db().execute(`INSERT INTO events (${EVENT_COLS}) VALUES (${r.map(() => '?').join(', ')})`, r);
      for (const [e, g] of [['$e1', 1], ['$e2', 1], ['$e3', 1], ['$e4', 1], ['$e5', 2]] as const) {
        await db().execute('INSERT INTO event_to_state_groups (event_id, state_group) VALUES (?, ?)', [e, g]);
      }
      for (const [u, d, t, e] of [[alice, 'PHONE', 'tx2', '$e2'], [bob, 'LAPTOP', 'tx3', '$e3'], [alice, 'DESK', 'tx4', '$e4']]) {
        await db().execute('INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, inserted_ts) VALUES (?, ?, ?, ?, 1)', [u, d, t, e]);
      }
      await db().execute('INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)', [room, '$e5']);

      await migrate(db());
      expect(await db().query("SELECT name FROM schema_migrations WHERE name = 'rooms/005_event_rows_carry_group_and_txn'")).toHaveLength(1);

      const store = new SqlRoomStore(db());
      expect(Object.fromEntries(await store.getStateGroups(['$e1', '$e4', '$e5', '$nope']))).toEqual({ $e1: 1, $e4: 1, $e5: 2 });
      const { groups } = await new SyncStore(db()).stateAfterEvents(['$e3', '$e5']);
      expect(Object.fromEntries(groups)).toEqual({ $e3: 1, $e5: 2 });
      // Idempotency keeps working from event_txn_ids; the viewer's txn ids come from the events rows.
      // (Scoped by path since rooms/006.)
      const sendScope = `send/${room}/m.room.message`;
      expect(await store.getTxnEvent(alice, 'PHONE', sendScope, 'tx2')).toBe('$e2');
      expect(await store.getTxnEvent(bob, 'LAPTOP', sendScope, 'tx3')).toBe('$e3');
      expect(Object.fromEntries(await store.getTxnIds(['$e2', '$e3', '$e4'], alice, 'PHONE'))).toEqual({ $e2: 'tx2' });
      expect(Object.fromEntries(await store.getTxnIds(['$e2', '$e3', '$e4'], alice, 'DESK'))).toEqual({ $e4: 'tx4' });
      const page = await store.paginateForViewer(room, { from: null, dir: 'b', limit: 10 }, { userId: bob, deviceId: 'LAPTOP' });
      expect(page.events.map((e) => e.event.event_id)).toEqual(['$e5', '$e4', '$e3', '$e2', '$e1']);
      expect(Object.fromEntries(page.txnIds)).toEqual({ $e3: 'tx3' });
      expect(await store.getForwardExtremities(room)).toEqual(['$e5']);
      expect((await store.stateHistory(room, 'm.room.topic', '')).map((h) => h.eventId)).toEqual(['$e5']);
      expect((await store.eventsAtTimestamp(room, 2500, 'f', 2)).map((e) => e.event.event_id)).toEqual(['$e3', '$e4']);
      expect((await store.getRoomEventsByStream(room, { from: 1, to: 4, limit: 10, dir: 'f' })).map((e) => e.event.event_id)).toEqual(['$e2', '$e3', '$e4']);

      // New events write their group and txn id on their row; the extremities move on.
      const ev = JSON.parse(eventRow(6, alice)[9] as string);
      await store.persistEvents({
        roomId: room,
        events: [{ event: ev, streamOrdering: 6, stateGroup: 2, txn: { userId: alice, deviceId: 'PHONE', scope: sendScope, txnId: 'tx6' } }],
        forwardExtremities: ['$e6'],
      });
      expect(await store.getTxnEvent(alice, 'PHONE', sendScope, 'tx6')).toBe('$e6');
      expect(Object.fromEntries(await store.getTxnIds(['$e2', '$e6'], alice, 'PHONE'))).toEqual({ $e2: 'tx2', $e6: 'tx6' });
      expect((await store.getStateGroups(['$e6'])).get('$e6')).toBe(2);
      expect(await store.getForwardExtremities(room)).toEqual(['$e6']);

      // What cost a page per event is gone or narrower.
      const tables = engine === 'sqlite'
        ? await db().query<{ name: string }>("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index')")
        : await db().query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()");
      const names = tables.map((t) => t.name);
      expect(names).not.toContain('event_to_state_groups');
      expect(names).not.toContain('event_txn_ids_event');
      expect(names).toContain('events_room_ts');
      const def =
        engine === 'sqlite'
          ? (await db().queryOne<{ sql: string }>("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'events_room_type'"))?.sql
          : (await db().queryOne<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE indexname = 'events_room_type'"))?.indexdef;
      expect(def).toMatch(/WHERE[\s(]+state_key IS NOT NULL/i);
      if (engine === 'sqlite') {
        // events keyed by stream_ordering (the rowid); txn ids and extremities in their primary key's B-tree.
        const sql = async (name: string) => (await db().queryOne<{ sql: string }>('SELECT sql FROM sqlite_schema WHERE name = ?', [name]))!.sql;
        expect(await sql('events')).toMatch(/stream_ordering INTEGER PRIMARY KEY/);
        expect(await sql('event_txn_ids')).toMatch(/WITHOUT ROWID/);
        expect(await sql('event_forward_extremities')).toMatch(/WITHOUT ROWID/);
      }
    });
  },
  { migrate: false },
);
