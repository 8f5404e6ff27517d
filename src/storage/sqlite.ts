/**
 * SQLite engine on better-sqlite3 (synchronous driver, one connection, WAL).
 *
 * better-sqlite3 is synchronous, so a transaction that awaits in between its
 * statements must not let other work run statements on the same connection:
 * a mutex serialises transactions, and statements outside a transaction wait
 * while one is open.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db, Queryable, Row } from './db.js';

type Stmt = Database.Statement;

export interface SqliteOptions {
  /** synchronous pragma: FULL (default) makes every commit durable. */
  synchronous?: 'FULL' | 'NORMAL';
}

export class SqliteDb implements Db {
  readonly engine = 'sqlite' as const;
  private readonly conn: Database.Database;
  private readonly stmts = new Map<string, Stmt>();
  private lock: Promise<void> = Promise.resolve();
  private inTx = false;

  constructor(path: string, opts: SqliteOptions = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.conn = new Database(path);
    this.conn.pragma('journal_mode = WAL');
    this.conn.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.conn.pragma('foreign_keys = OFF');
    this.conn.pragma('busy_timeout = 5000');
    this.conn.pragma('cache_size = -32000');
    this.conn.defaultSafeIntegers(false);
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
    return this.runQuery<T>(sql, params);
  }

  async queryOne<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, params))[0];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    if (this.inTx) await this.waitForLock();
    return this.runExecute(sql, params);
  }

  private async waitForLock(): Promise<void> {
    while (this.inTx) await this.lock;
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
    if (this.inTx) await this.waitForLock();
    this.conn.exec(script);
  }

  async close(): Promise<void> {
    if (this.inTx) await this.waitForLock();
    this.conn.close();
  }
}

function toSqlite(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  return v;
}
