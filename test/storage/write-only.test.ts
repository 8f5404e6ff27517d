/**
 * Write-only transactions (`writeTransaction`): on PostgreSQL their
 * statements are merged into one when that cannot change the result
 * (`mergeWrites`); on either engine they are all-or-nothing.
 */
import { expect, it } from 'vitest';
import { DISJOINT_ROWS, writeTransaction } from '../../src/storage/db.js';
import { mergeWrites, pgArrayLiteral, PostgresDb } from '../../src/storage/postgres.js';
import { describeEngines } from './engines.js';

it('merges inserts into different tables into one statement, in order', () => {
  const m = mergeWrites([
    { sql: 'INSERT INTO a (x) VALUES (?)', params: [1] },
    { sql: 'INSERT INTO b (y, z) VALUES (?, ?) ON CONFLICT (y) DO UPDATE SET z = excluded.z', params: [2, 3] },
    { sql: 'DELETE FROM c WHERE k IN (?)', params: [4] },
  ]);
  expect(m?.sql).toBe(
    'WITH w0 AS (INSERT INTO a (x) VALUES (?)), w1 AS (INSERT INTO b (y, z) VALUES (?, ?) ON CONFLICT (y) DO UPDATE SET z = excluded.z), ' +
      'w2 AS (DELETE FROM c WHERE k IN (?)) SELECT 1',
  );
  expect(m?.params).toEqual([1, 2, 3, 4]);
  const one = { sql: 'UPDATE a SET x = ?', params: [1] };
  expect(mergeWrites([one])).toBe(one);
});

it('does not merge statements that could see each other', () => {
  // The same table twice: the second would not see the first's rows.
  expect(mergeWrites([{ sql: 'INSERT INTO a (x) VALUES (?)', params: [1] }, { sql: 'UPDATE a SET x = ?', params: [2] }])).toBeUndefined();
  // Unless both say they touch different rows.
  expect(
    mergeWrites([
      { sql: `${DISJOINT_ROWS} DELETE FROM a WHERE x NOT IN (?)`, params: [1] },
      { sql: `${DISJOINT_ROWS} INSERT INTO a (x) VALUES (?) ON CONFLICT DO NOTHING`, params: [1] },
    ]),
  ).toBeDefined();
  expect(
    mergeWrites([
      { sql: `${DISJOINT_ROWS} DELETE FROM a WHERE x NOT IN (?)`, params: [1] },
      { sql: 'INSERT INTO a (x) VALUES (?)', params: [1] },
    ]),
  ).toBeUndefined();
  // Reads of other tables, results, and what is not a plain write.
  expect(mergeWrites([{ sql: 'INSERT INTO a (x) SELECT y FROM b', params: [] }, { sql: 'INSERT INTO b (y) VALUES (1)', params: [] }])).toBeUndefined();
  expect(mergeWrites([{ sql: 'INSERT INTO a (x) VALUES (1) RETURNING x', params: [] }, { sql: 'INSERT INTO b (y) VALUES (1)', params: [] }])).toBeUndefined();
  expect(mergeWrites([{ sql: 'LOCK TABLE a', params: [] }, { sql: 'INSERT INTO b (y) VALUES (1)', params: [] }])).toBeUndefined();
  // Rows from array parameters read no table; anything else after them does.
  expect(
    mergeWrites([
      { sql: 'INSERT INTO a (x, y) SELECT * FROM unnest(?::bigint[], ?::text[]) ON CONFLICT DO NOTHING', params: [[1], ['a']] },
      { sql: `${DISJOINT_ROWS} DELETE FROM b WHERE k = ANY(?::text[]) AND (k, v) NOT IN (SELECT * FROM unnest(?::text[], ?::int[]))`, params: [[], [], []] },
    ]),
  ).toBeDefined();
  expect(mergeWrites([{ sql: 'INSERT INTO a (x) SELECT * FROM unnest(?::text[]) u JOIN b ON b.y = u', params: [[]] }, { sql: 'INSERT INTO b (y) VALUES (1)', params: [] }])).toBeUndefined();
  expect(mergeWrites([{ sql: 'UPDATE a SET x = b.y FROM b WHERE b.k = a.k', params: [] }, { sql: 'INSERT INTO b (y) VALUES (1)', params: [] }])).toBeUndefined();
  expect(mergeWrites([{ sql: 'DELETE FROM a USING b WHERE b.k = a.k', params: [] }, { sql: 'INSERT INTO b (y) VALUES (1)', params: [] }])).toBeUndefined();
  // Too many parameters for one statement.
  const big = new Array(20_000).fill(0);
  expect(mergeWrites([{ sql: 'INSERT INTO a (x) VALUES (?)', params: big }, { sql: 'INSERT INTO b (y) VALUES (?)', params: big }])).toBeUndefined();
});

it('writes arrays as PostgreSQL array literals: strings quoted and escaped, booleans as 0/1, NULLs', () => {
  expect(pgArrayLiteral(['a"b', 'c\\d', '', 'NULL', null, undefined, 12, -3, true, false, 'é 😀 {x,y}'])).toBe(
    '{"a\\"b","c\\\\d","","NULL",NULL,NULL,12,-3,1,0,"é 😀 {x,y}"}',
  );
  expect(pgArrayLiteral([])).toBe('{}');
});

describeEngines('write-only transactions', (db, engine) => {
  it('writes every statement, including disjoint ones on one table', async () => {
    await db().exec('CREATE TABLE wo_a (k TEXT PRIMARY KEY, v BIGINT)');
    await db().exec('CREATE TABLE wo_b (room TEXT NOT NULL, ev TEXT NOT NULL, PRIMARY KEY (room, ev))');
    await db().execute("INSERT INTO wo_b (room, ev) VALUES ('r1', 'old1'), ('r1', 'keep'), ('r2', 'other')");
    const sent = countStatements(db());
    await writeTransaction(db(), async (tx) => {
      await tx.execute('INSERT INTO wo_a (k, v) VALUES (?, ?), (?, ?)', ['a', 1, 'b', 2]);
      await tx.execute(`${DISJOINT_ROWS} DELETE FROM wo_b WHERE room IN (?) AND (room, ev) NOT IN (VALUES (?, ?), (?, ?))`, ['r1', 'r1', 'keep', 'r1', 'new']);
      await tx.execute(`${DISJOINT_ROWS} INSERT INTO wo_b (room, ev) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING`, ['r1', 'keep', 'r1', 'new']);
    });
    // PostgreSQL: one round trip (no BEGIN, no COMMIT).
    if (engine === 'postgres') expect(sent()).toBe(1);
    expect(await db().query('SELECT k, v FROM wo_a ORDER BY k')).toEqual([
      { k: 'a', v: 1 },
      { k: 'b', v: 2 },
    ]);
    expect(await db().query('SELECT room, ev FROM wo_b ORDER BY room, ev')).toEqual([
      { room: 'r1', ev: 'keep' },
      { room: 'r1', ev: 'new' },
      { room: 'r2', ev: 'other' },
    ]);
  });

  it('writes nothing when one statement fails, merged or not', async () => {
    await db().exec('CREATE TABLE wo_c (k TEXT PRIMARY KEY)');
    await db().exec('CREATE TABLE wo_d (k TEXT PRIMARY KEY)');
    await db().execute("INSERT INTO wo_d (k) VALUES ('taken')");
    const attempt = (second: string) =>
      writeTransaction(db(), async (tx) => {
        await tx.execute('INSERT INTO wo_c (k) VALUES (?)', ['first']);
        await tx.execute(second, ['taken']);
      });
    // Merged on PostgreSQL (different tables), a transaction otherwise (the same table twice).
    await expect(attempt('INSERT INTO wo_d (k) VALUES (?)')).rejects.toThrow();
    await expect(attempt("INSERT INTO wo_c (k) VALUES (?), ('first')")).rejects.toThrow();
    expect(await db().query('SELECT k FROM wo_c')).toEqual([]);
    expect(await db().query('SELECT k FROM wo_d')).toEqual([{ k: 'taken' }]);
  });

  it.runIf(engine === 'postgres')('refuses reads', async () => {
    await expect(
      writeTransaction(db(), async (tx) => {
        await tx.query('SELECT 1');
      }),
    ).rejects.toThrow(/reads are not allowed/);
  });
});

/** PostgreSQL: counts the statements the pool's connections send from now on (SQLite: not counted). */
function countStatements(d: unknown): () => number {
  if (!(d instanceof PostgresDb)) return () => 0;
  let n = 0;
  const counted = new WeakSet<object>();
  d.pool.on('acquire', (client) => {
    if (counted.has(client)) return;
    counted.add(client);
    const c = client as unknown as { query: (...a: unknown[]) => unknown };
    const query = c.query.bind(client);
    c.query = (...a: unknown[]) => (n++, query(...a));
  });
  return () => n;
}
