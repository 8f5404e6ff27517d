/**
 * SQLite engine on better-sqlite3 (synchronous driver, WAL; one connection,
 * plus a writer thread's for write-only transactions).
 *
 * better-sqlite3 is synchronous, so a transaction that awaits in between its
 * statements must not let other work run statements on the same connection:
 * a mutex serialises transactions, and statements outside a transaction wait
 * while one is open.
 *
 * Write-only transactions (`writeOnlyTransaction`: the event persister's group
 * commits) run on a second connection on a writer thread (sqlite-writer.ts),
 * so that their fsync does not block the event loop. They take the same
 * mutex; while one is in flight, reads on this connection go on (WAL) and
 * writes outside a transaction queue on the mutex behind it.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db, Queryable, Row } from './db.js';
import { SqliteWriter, type WriterStatement } from './sqlite-writer.js';

type Stmt = Database.Statement;

/**
 * Pages in the WAL before a commit checkpoints it into the database file
 * (SQLite's default is 1,000, ≈ 4 MB). Every event commit writes on the order
 * of a hundred pages, many of them the same hot index pages again; a larger
 * WAL checkpoints ten times less often and copies each hot page once per
 * checkpoint. The WAL file stays at most ≈ 40 MB (≈ 80 MB if the writer
 * thread never commits: the main connection checkpoints at twice as many).
 */
export const WAL_AUTOCHECKPOINT_PAGES = 10_000;

export interface SqliteOptions {
  /** synchronous pragma: FULL (default) makes every commit durable. */
  synchronous?: 'FULL' | 'NORMAL';
  /** Run write-only transactions on a writer thread (default: true, except for ':memory:'). */
  writerThread?: boolean;
}

export class SqliteDb implements Db {
  readonly engine = 'sqlite' as const;
  private readonly conn: Database.Database;
  private readonly stmts = new Map<string, Stmt>();
  private lock: Promise<void> = Promise.resolve();
  private inTx = false;
  private readonly writer: SqliteWriter | undefined;
  /** The write-only transaction in flight on the writer thread, if any. */
  private writing: Promise<void> | undefined;

  constructor(path: string, opts: SqliteOptions = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.conn = new Database(path);
    this.conn.pragma('journal_mode = WAL');
    this.conn.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.conn.pragma('foreign_keys = OFF');
    this.conn.pragma('busy_timeout = 5000');
    this.conn.pragma('cache_size = -32000');
    this.conn.defaultSafeIntegers(false);
    if (path !== ':memory:' && opts.writerThread !== false) this.writer = new SqliteWriter(path, opts.synchronous ?? 'FULL', WAL_AUTOCHECKPOINT_PAGES);
    // With a writer thread, it checkpoints (off the event loop); this connection only if the WAL grows far beyond.
    this.conn.pragma(`wal_autocheckpoint = ${this.writer ? 2 * WAL_AUTOCHECKPOINT_PAGES : WAL_AUTOCHECKPOINT_PAGES}`);
  }

  private prepare(sql: string): Stmt {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.conn.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Runs statements synchronously on the connection (caller holds the right to). */
  private readonly direct: Queryable = {
    engine: 'sqlite',
    query: async <T extends Row>(sql: string, params: readonly unknown[] = []) => this.runQuery<T>(sql, params),
    queryOne: async <T extends Row>(sql: string, params: readonly unknown[] = []) => this.runQuery<T>(sql, params)[0] as T | undefined,
    execute: async (sql: string, params: readonly unknown[] = []) => this.runExecute(sql, params),
  };

  private runQuery<T>(sql: string, params: readonly unknown[]): T[] {
    const s = this.prepare(sql);
    const p = params.map(toSqlite);
    if (s.reader) return s.all(...p) as T[];
    s.run(...p);
    return [];
  }

  private runExecute(sql: string, params: readonly unknown[]): number {
    const s = this.prepare(sql);
    const p = params.map(toSqlite);
    if (s.reader) {
      s.all(...p);
      return 0;
    }
    return s.run(...p).changes;
  }

  async query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    if (this.inTx) await this.waitForLock();
    if (this.writing && !this.prepare(sql).readonly) return this.exclusive(() => this.runQuery<T>(sql, params));
    return this.runQuery<T>(sql, params);
  }

  async queryOne<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, params))[0];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    if (this.inTx) await this.waitForLock();
    if (this.writing && !this.prepare(sql).readonly) return this.exclusive(() => this.runExecute(sql, params));
    return this.runExecute(sql, params);
  }

  private async waitForLock(): Promise<void> {
    while (this.inTx) await this.lock;
  }

  /**
   * Runs `fn` holding the mutex, in turn after the transactions already
   * queued (a write while a write-only transaction is in flight: first in
   * first out, so a stream of group commits cannot starve it).
   */
  private async exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const prev = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async writeOnlyTransaction(fn: (tx: Queryable) => Promise<void>): Promise<void> {
    if (!this.writer) return this.transaction(fn);
    const stmts: WriterStatement[] = [];
    const readsNotAllowed = async (): Promise<never> => {
      throw new Error('writeOnlyTransaction: reads are not allowed');
    };
    const recorder: Queryable = {
      engine: 'sqlite',
      query: readsNotAllowed,
      queryOne: readsNotAllowed,
      execute: async (sql: string, params: readonly unknown[] = []) => {
        stmts.push([sql, params.map(toSqlite)]);
        return 0;
      },
    };
    await fn(recorder);
    if (!stmts.length) return;
    const prev = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((r) => (release = r));
    await prev;
    const run = this.writer.run(stmts);
    this.writing = run;
    try {
      await run;
    } finally {
      if (this.writing === run) this.writing = undefined;
      release();
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const prev = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((r) => (release = r));
    await prev;
    this.inTx = true;
    this.conn.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn(this.direct);
      this.conn.exec('COMMIT');
      return result;
    } catch (e) {
      if (this.conn.inTransaction) this.conn.exec('ROLLBACK');
      throw e;
    } finally {
      this.inTx = false;
      release();
    }
  }

  async exec(script: string): Promise<void> {
    await this.exclusive(() => this.conn.exec(script));
  }

  async close(): Promise<void> {
    await this.exclusive(async () => {
      await this.writer?.close();
      this.conn.close();
    });
  }
}

function toSqlite(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  return v;
}
