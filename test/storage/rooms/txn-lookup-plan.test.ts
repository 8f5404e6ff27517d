import { expect, it } from 'vitest';
import { PostgresDb, rewritePlaceholders } from '../../../src/storage/postgres.js';
import { TXN_LOOKUP_BATCH_SQL } from '../../../src/storage/rooms/sql-store.js';
import { describeEngines } from './engines.js';

describeEngines('batched txn id lookup', (db) => {
  it('probes the primary key in the generic plan of a prepared statement (never scans the table)', async () => {
    if (db().engine !== 'postgres') return;
    const pool = (db() as PostgresDb).pool;
    // A table PostgreSQL has never analysed, as in a young database: the
    // plan a prepared statement keeps after its first executions must still
    // be one probe per asked key.
    for (let i = 0; i < 300; i++) {
      await db().execute('INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, inserted_ts) VALUES (?, ?, ?, ?, 0)', [
        `@u${i % 7}:x`,
        `D${i % 3}`,
        `t${i}`,
        `$e${i}`,
      ]);
    }
    const client = await pool.connect();
    try {
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE txn_lookup_plan(text[], text[], text[]) AS ${rewritePlaceholders(TXN_LOOKUP_BATCH_SQL)}`);
      const plan = await client.query(`EXPLAIN EXECUTE txn_lookup_plan('{"@u1:x","@u2:x"}', '{D1,D2}', '{t1,nope}')`);
      const text = plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index (Only )?Scan using event_txn_ids_pkey/);
      expect(text).not.toMatch(/Seq Scan on event_txn_ids/);
      const rows = await client.query(rewritePlaceholders(TXN_LOOKUP_BATCH_SQL), [['@u1:x', '@u2:x'], ['D1', 'D2'], ['t1', 'nope']]);
      expect(rows.rows).toEqual([
        { user_id: '@u1:x', device_id: 'D1', txn_id: 't1', event_id: '$e1' },
        { user_id: '@u2:x', device_id: 'D2', txn_id: 'nope', event_id: null },
      ]);
      await client.query('DEALLOCATE txn_lookup_plan');
    } finally {
      await client.query('RESET plan_cache_mode').catch(() => {});
      client.release();
    }
  });
});
