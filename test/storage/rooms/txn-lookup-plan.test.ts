import { expect, it } from 'vitest';
import { PostgresDb, rewritePlaceholders } from '../../../src/storage/postgres.js';
import { SQLITE_TXN_LOOKUP_MAX, SqlRoomStore, sqliteTxnLookupSql, TXN_LOOKUP_BATCH_SQL } from '../../../src/storage/rooms/sql-store.js';
import { countingQueries, describeEngines } from './engines.js';

describeEngines('batched txn id lookup', (db) => {
  it('probes the primary key in the generic plan of a prepared statement (never scans the table)', async () => {
    if (db().engine !== 'postgres') return;
    const pool = (db() as PostgresDb).pool;
    // A table PostgreSQL has never analysed, as in a young database: the
    // plan a prepared statement keeps after its first executions must still
    // be one probe per asked key.
    for (let i = 0; i < 300; i++) {
      await db().execute('INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_id, inserted_ts) VALUES (?, ?, ?, ?, ?, 0)', [
        `@u${i % 7}:x`,
        `D${i % 3}`,
        `send/!r${i % 2}:x/m.room.message`,
        `t${i}`,
        `$e${i}`,
      ]);
    }
    const client = await pool.connect();
    try {
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE txn_lookup_plan(text[], text[], text[], text[]) AS ${rewritePlaceholders(TXN_LOOKUP_BATCH_SQL)}`);
      const plan = await client.query(
        `EXPLAIN EXECUTE txn_lookup_plan('{"@u1:x","@u2:x"}', '{D1,D2}', '{send/!r1:x/m.room.message,send/!r0:x/m.room.message}', '{t1,nope}')`,
      );
      const text = plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index (Only )?Scan using event_txn_ids_pkey/);
      expect(text).not.toMatch(/Seq Scan on event_txn_ids/);
      // The probe uses the whole key, not a prefix of it.
      expect(text).toMatch(/Index Cond: .*scope = .*txn_id = /);
      const rows = await client.query(rewritePlaceholders(TXN_LOOKUP_BATCH_SQL), [
        ['@u1:x', '@u2:x', '@u1:x'],
        ['D1', 'D2', 'D1'],
        ['send/!r1:x/m.room.message', 'send/!r0:x/m.room.message', 'send/!r0:x/m.room.message'],
        ['t1', 'nope', 't1'],
      ]);
      // The same txn id under another scope (path) is another key.
      expect(rows.rows).toEqual([
        { user_id: '@u1:x', device_id: 'D1', scope: 'send/!r1:x/m.room.message', txn_id: 't1', event_id: '$e1' },
        { user_id: '@u2:x', device_id: 'D2', scope: 'send/!r0:x/m.room.message', txn_id: 'nope', event_id: null },
        { user_id: '@u1:x', device_id: 'D1', scope: 'send/!r0:x/m.room.message', txn_id: 't1', event_id: null },
      ]);
      await client.query('DEALLOCATE txn_lookup_plan');
    } finally {
      await client.query('RESET plan_cache_mode').catch(() => {});
      client.release();
    }
  });

  it('SQLite: probes the primary key once per asked key (never scans the table)', async () => {
    if (db().engine !== 'sqlite') return;
    for (const n of [2, SQLITE_TXN_LOOKUP_MAX]) {
      const plan = await db().query(`EXPLAIN QUERY PLAN ${sqliteTxnLookupSql(n)}`, new Array(4 * n).fill('x'));
      const text = plan.map((r) => String(r.detail)).join('\n');
      expect(text).toMatch(/SEARCH event_txn_ids USING PRIMARY KEY \(user_id=\? AND device_id=\? AND scope=\? AND txn_id=\?\)/);
      expect(text).not.toMatch(/SCAN event_txn_ids/);
    }
  });

  it('answers the lookups asked in one turn with one statement per chunk: found, not found, repeated keys, NUL alone', async () => {
    // Rows no other test of this suite writes.
    const keys: Array<[string, string, string, string]> = [];
    for (let i = 0; i < 150; i++) keys.push([`@b${i % 5}:x`, `BD${i % 2}`, `send/!b${i % 3}:x/m.room.message`, `bt${i}`]);
    for (const [i, [u, d, s, t]] of keys.entries()) {
      if (i % 3 === 0) continue; // every third key has no row
      await db().execute('INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_id, inserted_ts) VALUES (?, ?, ?, ?, ?, 0)', [u, d, s, t, `$b${i}`]);
    }
    const { db: counting, statements } = countingQueries(db());
    const store = new SqlRoomStore(counting);
    const expected = (i: number) => (i % 3 === 0 ? undefined : `$b${i}`);

    // 150 keys in one turn: ceil(150 / chunk) statements; the same key twice, and keys that differ in one part only.
    const k1 = keys[1]!;
    const asked = [...keys, k1, [k1[0], k1[1], k1[2], 'bt-none'], [k1[0], k1[1], 'redact/!b1:x/m.room.message', k1[3]]] as Array<[string, string, string, string]>;
    const got = await Promise.all(asked.map(([u, d, s, t]) => store.getTxnEvent(u, d, s, t)));
    expect(got).toEqual([...keys.map((_, i) => expected(i)), expected(1), undefined, undefined]);
    const chunk = db().engine === 'sqlite' ? SQLITE_TXN_LOOKUP_MAX : 500;
    expect(statements.length).toBe(Math.ceil(asked.length / chunk));

    // Three keys (rounded up to four on SQLite), one of them absent; then one alone: the point lookup.
    statements.length = 0;
    expect(await Promise.all([0, 1, 2].map((i) => store.getTxnEvent(...keys[i]!)))).toEqual([undefined, '$b1', '$b2']);
    expect(statements.length).toBe(1);
    expect(await store.getTxnEvent(...keys[4]!)).toBe('$b4');
    expect(statements.length).toBe(2);

    // A key with a NUL is asked alone (after the others' statement), and fails (PostgreSQL) or misses (SQLite) alone.
    statements.length = 0;
    const nul = await Promise.allSettled([
      store.getTxnEvent(...keys[1]!),
      store.getTxnEvent(keys[2]![0], keys[2]![1], `${keys[2]![2]}\u0000`, keys[2]![3]),
      store.getTxnEvent(...keys[2]!),
    ]);
    expect(nul[0]).toEqual({ status: 'fulfilled', value: '$b1' });
    expect(nul[2]).toEqual({ status: 'fulfilled', value: '$b2' });
    if (db().engine === 'sqlite') expect(nul[1]).toEqual({ status: 'fulfilled', value: undefined });
    else expect(nul[1].status).toBe('rejected');
    expect(statements.length).toBe(2);

    // Lookups of different turns are not held back for each other.
    statements.length = 0;
    expect(await store.getTxnEvent(...keys[5]!)).toBe('$b5');
    expect(await store.getTxnEvent(...keys[6]!)).toBeUndefined();
    expect(statements.length).toBe(2);
  });
});
