/** The Db engines themselves: placeholders, transactions, concurrency, migrations. */
import { expect, it } from 'vitest';
import { placeholders } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrate.js';
import { rewritePlaceholders } from '../../src/storage/postgres.js';
import { describeEngines } from './engines.js';

it('rewrites ? placeholders for PostgreSQL, leaving quoted ones alone', () => {
  expect(rewritePlaceholders("SELECT ?, '?', \"a?\", ? FROM t WHERE x = ?")).toBe("SELECT $1, '?', \"a?\", $2 FROM t WHERE x = $3");
  expect(placeholders(3)).toBe('?, ?, ?');
});

describeEngines('Db engine', (db, engine) => {
  it('has applied the migrations once, and a second run does nothing', async () => {
    const rows = await db().query<{ name: string }>('SELECT name FROM schema_migrations');
    expect(rows.map((r) => r.name)).toContain('accounts/001_accounts');
    expect(await migrate(db())).toEqual([]);
    expect(db().engine).toBe(engine);
  });

  it('binds parameters of every type we use', async () => {
    await db().exec('CREATE TABLE t_params (a TEXT, b BIGINT, c INTEGER, d TEXT)');
    const n = await db().execute('INSERT INTO t_params (a, b, c, d) VALUES (?, ?, ?, ?)', ['x?y', 2 ** 50, true, undefined]);
    expect(n).toBe(1);
    const row = await db().queryOne('SELECT a, b, c, d FROM t_params WHERE a = ? AND b = ?', ['x?y', 2 ** 50]);
    expect(row).toEqual({ a: 'x?y', b: 2 ** 50, c: 1, d: null });
    const ins = await db().query<{ a: string }>('INSERT INTO t_params (a, b, c) VALUES (?, ?, ?) RETURNING a', ['r', 1, 0]);
    expect(ins).toEqual([{ a: 'r' }]);
    const many = await db().query(`SELECT a FROM t_params WHERE a IN (${placeholders(2)}) ORDER BY a`, ['r', 'x?y']);
    expect(many.map((r) => r.a)).toEqual(['r', 'x?y']);
    expect(await db().queryOne('SELECT a FROM t_params WHERE a = ?', ['none'])).toBeUndefined();
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await db().exec('CREATE TABLE t_tx (k TEXT PRIMARY KEY, v BIGINT)');
    const out = await db().transaction(async (tx) => {
      await tx.execute('INSERT INTO t_tx (k, v) VALUES (?, ?)', ['a', 1]);
      await tx.execute('INSERT INTO t_tx (k, v) VALUES (?, ?)', ['b', 2]);
      return 'done';
    });
    expect(out).toBe('done');
    await expect(
      db().transaction(async (tx) => {
        await tx.execute('INSERT INTO t_tx (k, v) VALUES (?, ?)', ['c', 3]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    // a failing statement rolls back the statements before it too
    await expect(
      db().transaction(async (tx) => {
        await tx.execute('INSERT INTO t_tx (k, v) VALUES (?, ?)', ['d', 4]);
        await tx.execute('INSERT INTO t_tx (k, v) VALUES (?, ?)', ['a', 5]);
      }),
    ).rejects.toThrow();
    const rows = await db().query<{ k: string }>('SELECT k FROM t_tx ORDER BY k');
    expect(rows.map((r) => r.k)).toEqual(['a', 'b']);
  });

  it('keeps concurrent read-modify-write transactions from losing updates', async () => {
    await db().exec('CREATE TABLE t_counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)');
    await db().execute('INSERT INTO t_counter (id, n) VALUES (1, 0)');
    const bump = () =>
      db().transaction(async (tx) => {
        // lock the row on PostgreSQL; SQLite serialises whole transactions
        const lock = engine === 'postgres' ? ' FOR UPDATE' : '';
        const r = await tx.queryOne<{ n: number }>(`SELECT n FROM t_counter WHERE id = 1${lock}`);
        await new Promise((res) => setTimeout(res, 1));
        await tx.execute('UPDATE t_counter SET n = ? WHERE id = 1', [Number(r!.n) + 1]);
      });
    await Promise.all(Array.from({ length: 20 }, bump));
    expect(Number((await db().queryOne('SELECT n FROM t_counter WHERE id = 1'))!.n)).toBe(20);
  });

  if (engine === 'sqlite') {
    it('makes statements outside a transaction wait until it ends (SQLite)', async () => {
      await db().exec('CREATE TABLE t_wait (k TEXT)');
      const order: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const tx = db().transaction(async (t) => {
        await t.execute("INSERT INTO t_wait (k) VALUES ('in-tx')");
        order.push('tx-insert');
        await gate;
        order.push('tx-end');
      });
      await new Promise((r) => setTimeout(r, 5));
      const outside = db()
        .query('SELECT k FROM t_wait')
        .then((rows) => {
          order.push(`outside saw ${rows.length}`);
        });
      await new Promise((r) => setTimeout(r, 5));
      release();
      await Promise.all([tx, outside]);
      expect(order).toEqual(['tx-insert', 'tx-end', 'outside saw 1']);
    });
  }
});
