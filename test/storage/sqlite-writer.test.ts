/**
 * SQLite write-only transactions on the writer thread (sqlite-writer.ts):
 * committed and visible to the main connection when they resolve, durable
 * across a reopen, all-or-nothing, ordered with the main connection's own
 * writes, and never allowed to read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { writeTransaction } from '../../src/storage/db.js';
import { SqliteDb } from '../../src/storage/sqlite.js';

let dir: string;
let db: SqliteDb;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'myelin-writer-'));
  db = new SqliteDb(join(dir, 'w.db'));
  await db.exec('CREATE TABLE w (k TEXT PRIMARY KEY, v BIGINT NOT NULL, flag INTEGER, note TEXT)');
});

afterEach(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

it('commits on the writer thread: visible to the main connection on resolve, and after a reopen', async () => {
  await db.writeOnlyTransaction(async (tx) => {
    await tx.execute('INSERT INTO w (k, v, flag, note) VALUES (?, ?, ?, ?), (?, ?, ?, ?)', ['a', 1, true, undefined, 'b', 2, false, 'x']);
    await tx.execute('UPDATE w SET v = v + 10 WHERE k = ?', ['a']);
  });
  expect(await db.query('SELECT k, v, flag, note FROM w ORDER BY k')).toEqual([
    { k: 'a', v: 11, flag: 1, note: null },
    { k: 'b', v: 2, flag: 0, note: 'x' },
  ]);
  await db.close();
  db = new SqliteDb(join(dir, 'w.db'));
  expect(await db.query('SELECT k, v FROM w ORDER BY k')).toEqual([
    { k: 'a', v: 11 },
    { k: 'b', v: 2 },
  ]);
});

it('is all-or-nothing and reports the failing statement with its SQLite code', async () => {
  await db.execute("INSERT INTO w (k, v) VALUES ('dup', 0)");
  const failed = writeTransaction(db, async (tx) => {
    await tx.execute("INSERT INTO w (k, v) VALUES ('new', 1)");
    await tx.execute("INSERT INTO w (k, v) VALUES ('dup', 2)");
  });
  await expect(failed).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY', message: expect.stringMatching(/UNIQUE constraint failed/) });
  expect(await db.query('SELECT k, v FROM w ORDER BY k')).toEqual([{ k: 'dup', v: 0 }]);
  // The writer goes on after a failure.
  await writeTransaction(db, async (tx) => void (await tx.execute("INSERT INTO w (k, v) VALUES ('after', 3)")));
  expect(await db.query("SELECT v FROM w WHERE k = 'after'")).toEqual([{ v: 3 }]);
});

it('refuses reads inside a write-only transaction and writes nothing then', async () => {
  const reading = db.writeOnlyTransaction(async (tx) => {
    await tx.execute("INSERT INTO w (k, v) VALUES ('r', 1)");
    await tx.query('SELECT * FROM w');
  });
  await expect(reading).rejects.toThrow(/reads are not allowed/);
  expect(await db.query('SELECT * FROM w')).toEqual([]);
});

it('commits in call order, with the main connection writing and reading meanwhile without SQLITE_BUSY', async () => {
  const order: string[] = [];
  const writes: Array<Promise<unknown>> = [];
  for (let i = 0; i < 20; i++) {
    writes.push(writeTransaction(db, async (tx) => void (await tx.execute('INSERT INTO w (k, v) VALUES (?, ?)', [`t${i}`, i]))).then(() => order.push(`t${i}`)));
    if (i % 5 === 0) {
      // Autocommit writes and transactions on the main connection interleave with the writer's.
      writes.push(db.execute('INSERT INTO w (k, v) VALUES (?, ?)', [`u${i}`, i]));
      writes.push(db.transaction(async (tx) => void (await tx.execute('INSERT INTO w (k, v) VALUES (?, ?)', [`x${i}`, i]))));
    }
    writes.push(db.query('SELECT COUNT(*) AS n FROM w'));
  }
  await Promise.all(writes);
  expect(order).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`));
  expect(await db.queryOne('SELECT COUNT(*) AS n FROM w')).toEqual({ n: 28 });
  // A transaction started after a write-only one resolved sees it.
  await writeTransaction(db, async (tx) => void (await tx.execute("UPDATE w SET v = 1000 WHERE k = 't3'")));
  expect(await db.transaction((tx) => tx.queryOne('SELECT v FROM w WHERE k = ?', ['t3']))).toEqual({ v: 1000 });
});

it('keeps in-memory databases on the main thread', async () => {
  const mem = new SqliteDb(':memory:');
  try {
    await mem.exec('CREATE TABLE m (k TEXT PRIMARY KEY)');
    await writeTransaction(mem, async (tx) => void (await tx.execute("INSERT INTO m (k) VALUES ('a')")));
    expect(await mem.query('SELECT k FROM m')).toEqual([{ k: 'a' }]);
  } finally {
    await mem.close();
  }
});
