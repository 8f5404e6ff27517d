/**
 * rooms/006 on a database that already holds transaction ids: each row gets
 * the scope (endpoint path) of the event it names, as RoomService's txnScope
 * builds it, so a client's retry across the upgrade still finds its event;
 * and the same txn id on another path becomes a key of its own.
 */
import { expect, it } from 'vitest';
import { txnScope } from '../../../src/services/rooms/room-service.js';
import { migrate } from '../../../src/storage/migrate.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { describeEngines, migrateThrough } from '../engines.js';

// A room id with the characters the scope encodes (a lenient localpart may hold them).
const room = '!a/b%2Fc:mig.test';
const alice = '@alice:mig.test';

const EVENT_COLS = `stream_ordering, event_id, room_id, type, state_key, sender, depth, topological_ordering, origin_server_ts, json,
  outlier, rejected_reason, soft_failed, redacted_by, contains_url, relates_to_id, rel_type, instance_name, received_ts, unsigned_extra`;

function eventRow(n: number, type: string, extra: Record<string, unknown>, content: Record<string, unknown> = {}): unknown[] {
  const ev = { event_id: `$e${n}`, room_id: room, type, sender: alice, content, origin_server_ts: 1000 * n, depth: n, ...extra };
  return [n, ev.event_id, room, type, null, alice, n, n, ev.origin_server_ts, JSON.stringify(ev), 0, null, 0, null, 0, null, null, 'master', 1000 * n, null];
}

describeEngines(
  'rooms/006 on existing txn ids',
  (db, engine) => {
    it('derives each row\'s scope from its event, keeps the retries deduping and keys new rows by path', async () => {
      await migrateThrough(db(), 'rooms/005_event_rows_carry_group_and_txn');
      const rows = [
        eventRow(1, 'm.room.message', {}, { body: 'hi' }),
        // /redact in a room before v11 (target at the top level), with text the PostgreSQL json type cannot extract from.
        eventRow(2, 'm.room.redaction', { redacts: '$e1' }, { reason: 'nul \u0000 and lone \ud800' }),
        // /redact in a v11 room (target in the content).
        eventRow(3, 'm.room.redaction', {}, { redacts: '$e1', reason: '"redacts":"$no"' }),
        // A redaction without a target: PUT /send/m.room.redaction/{txnId} before v11.
        eventRow(4, 'm.room.redaction', {}, { reason: 'r' }),
        eventRow(5, 'org.example.custom/type', {}, { body: 'body with \u0000' }),
      ];
      for (const r of rows) await db().execute(`INSERT INTO events (${EVENT_COLS}) VALUES (${r.map(() => '?').join(', ')})`, r);
      for (const [t, e] of [['t1', '$e1'], ['t2', '$e2'], ['t3', '$e3'], ['t4', '$e4'], ['t5', '$e5'], ['t6', '$gone']]) {
        await db().execute('INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, inserted_ts) VALUES (?, ?, ?, ?, 1)', [alice, 'PHONE', t, e]);
      }

      await migrate(db());
      expect(await db().query("SELECT name FROM schema_migrations WHERE name = 'rooms/006_txn_ids_scoped_by_path'")).toHaveLength(1);

      const store = new SqlRoomStore(db());
      const got = (scope: string, txnId: string) => store.getTxnEvent(alice, 'PHONE', scope, txnId);
      // A retry of each request finds its event under the scope the service now asks with.
      expect(await got(txnScope('send', room, 'm.room.message'), 't1')).toBe('$e1');
      expect(await got(txnScope('redact', room, '$e1'), 't2')).toBe('$e2');
      expect(await got(txnScope('redact', room, '$e1'), 't3')).toBe('$e3');
      expect(await got(txnScope('send', room, 'm.room.redaction'), 't4')).toBe('$e4');
      expect(await got(txnScope('send', room, 'org.example.custom/type'), 't5')).toBe('$e5');
      // Another path with the same txn id is not a retry.
      expect(await got(txnScope('send', room, 'm.room.redaction'), 't2')).toBeUndefined();
      expect(await got(txnScope('send', '!other:mig.test', 'm.room.message'), 't1')).toBeUndefined();
      expect(await got(txnScope('send', room, 'm.room.message'), 't3')).toBeUndefined();
      // The row of an event that is gone is dropped.
      expect(await db().query('SELECT * FROM event_txn_ids WHERE txn_id = ?', ['t6'])).toEqual([]);
      const scopes = await db().query<{ scope: string }>('SELECT scope FROM event_txn_ids WHERE txn_id = ?', ['t1']);
      expect(scopes).toEqual([{ scope: 'send/!a%2Fb%252Fc:mig.test/m.room.message' }]);

      // The same txn id in another room is a row of its own now (the old key refused it).
      const ev = JSON.parse(eventRow(6, 'm.room.message', {})[9] as string);
      const elsewhere = txnScope('send', '!other:mig.test', 'm.room.message');
      await store.persistEvents({
        roomId: room,
        events: [{ event: ev, streamOrdering: 6, stateGroup: 1, txn: { userId: alice, deviceId: 'PHONE', scope: elsewhere, txnId: 't1' } }],
        forwardExtremities: ['$e6'],
      });
      expect(await got(elsewhere, 't1')).toBe('$e6');
      expect(await got(txnScope('send', room, 'm.room.message'), 't1')).toBe('$e1');

      if (engine === 'sqlite') {
        const sql = (await db().queryOne<{ sql: string }>("SELECT sql FROM sqlite_schema WHERE name = 'event_txn_ids'"))!.sql;
        expect(sql).toMatch(/PRIMARY KEY \(user_id, device_id, scope, txn_id\)/);
        expect(sql).toMatch(/WITHOUT ROWID/);
      } else {
        const def = (await db().queryOne<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE indexname = 'event_txn_ids_pkey'"))!.indexdef;
        expect(def).toMatch(/\(user_id, device_id, scope, txn_id\)/);
      }
    });
  },
  { migrate: false },
);
