/**
 * To-device transaction ids are scoped by endpoint path, which names the
 * event type (PUT /sendToDevice/{eventType}/{txnId}); live/004 gives the rows
 * written before the type of their messages where one is still undelivered.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { migrate } from '../../src/storage/migrate.js';
import { ToDeviceStore } from '../../src/storage/live/to-device-store.js';
import { describeEngines, migrateThrough } from './engines.js';

const alice = '@alice:td.test';
const bob = '@bob:td.test';

describeEngines(
  'to-device txn ids',
  (db) => {
    it('migrates the claimed txn ids (type from the undelivered messages) and keys new claims by event type', async () => {
      await migrateThrough(db(), 'live/003_push_exceptions_by_room');
      // t1: still in bob's inbox (its JSON holds what PostgreSQL's json type cannot extract from); t2: delivered and gone.
      const message = { type: 'org.example.ping', sender: alice, content: { odd: 'nul \u0000 lone \ud800' } };
      await db().execute('INSERT INTO device_inbox (user_id, device_id, stream_id, message_json) VALUES (?, ?, ?, ?)', [bob, 'B', 1, JSON.stringify(message)]);
      for (const [t, s] of [['t1', 1], ['t2', 2]] as const) {
        await db().execute('INSERT INTO to_device_txns (user_id, device_id, txn_id, stream_id, inserted_ts) VALUES (?, ?, ?, ?, 1)', [alice, 'A', t, s]);
      }

      // t3: a txn id the old code took (no bound but the path part's) whose key, with its message's long type
      // added, would not fit a PostgreSQL primary-key entry (random text: repeated text would be compressed).
      const longTxn = 't3' + randomBytes(1494).toString('base64');
      const longType = 'org.example.' + randomBytes(520).toString('base64');
      await db().execute('INSERT INTO device_inbox (user_id, device_id, stream_id, message_json) VALUES (?, ?, ?, ?)', [
        bob,
        'B',
        7,
        JSON.stringify({ type: longType, sender: alice, content: {} }),
      ]);
      await db().execute('INSERT INTO to_device_txns (user_id, device_id, txn_id, stream_id, inserted_ts) VALUES (?, ?, ?, ?, 1)', [alice, 'A', longTxn, 7]);

      await migrate(db());
      const rows = await db().query<{ txn_id: string; event_type: string }>('SELECT txn_id, event_type FROM to_device_txns ORDER BY txn_id');
      // No request can name t3 any more (txn ids are bounded at 1,024 bytes): PostgreSQL drops it, SQLite may keep it.
      expect(rows.filter((r) => r.txn_id !== longTxn).map((r) => [r.txn_id, r.event_type])).toEqual([['t1', 'org.example.ping'], ['t2', '']]);
      if (db().engine === 'postgres') expect(rows).toHaveLength(2);

      const store = new ToDeviceStore(db());
      const claim = (type: string, txnId: string, streamId: number) => db().transaction((tx) => store.claimTxn(tx, alice, 'A', type, txnId, streamId));
      // A retry across the upgrade is still a retry; the same txn id with another type is not.
      expect(await claim('org.example.ping', 't1', 3)).toBe(false);
      expect(await claim('org.example.other', 't1', 4)).toBe(true);
      expect(await claim('org.example.other', 't1', 5)).toBe(false);
      expect(await claim('org.example.ping', 't2', 6)).toBe(true);
    });
  },
  { migrate: false },
);
