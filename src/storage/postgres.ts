/**
 * PostgreSQL engine on node-postgres with a connection pool.
 * `?` placeholders are rewritten to `$1..$n` (outside quoted strings).
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import { DISJOINT_ROWS, type Db, type Queryable, type Row } from './db.js';

let pgModule: typeof pg | undefined;

/**
 * node-postgres, loaded on first use: a monolith on SQLite never pays for it
 * (start-up time and memory).
 */
function loadPg(): typeof pg {
  if (!pgModule) {
    pgModule = createRequire(import.meta.url)('pg') as typeof pg;
    // BIGINT (int8) and NUMERIC come back as JS numbers: every value we store
    // fits in 2^53 (timestamps, stream positions, counters).
    pgModule.types.setTypeParser(20, (v) => Number(v));
    pgModule.types.setTypeParser(1700, (v) => Number(v));
  }
  return pgModule;
}

export interface PostgresOptions {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  min?: number;
  max?: number;
  applicationName?: string;
}

const rewritten = new Map<string, string>();
const PLACEHOLDER_OR_QUOTED = /'[^']*'|"[^"]*"|\?/g;

/** `?` → `$n`; `cache` false for one-off texts (merged write statements), which would fill the cache. */
export function rewritePlaceholders(sql: string, cache = true): string {
  const hit = cache ? rewritten.get(sql) : undefined;
  if (hit !== undefined) return hit;
  // Quoted literals and identifiers are kept as they are; each bare `?` is numbered.
  let n = 0;
  const out = sql.replace(PLACEHOLDER_OR_QUOTED, (m) => (m === '?' ? `$${++n}` : m));
  if (cache && rewritten.size < 5000) rewritten.set(sql, out);
  return out;
}

/** A statement of a write-only transaction, as recorded. */
export interface RecordedWrite {
  sql: string;
  params: readonly unknown[];
}

/** Bind parameters above which a write-only transaction is not merged (PostgreSQL allows 65,535). */
const MERGE_MAX_PARAMS = 30_000;
const WRITE_HEAD = /^\s*(?:\/\*.*?\*\/\s*)?(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE)\s+([A-Za-z_][\w.]*)\s/is;
const READS = /\b(?:SELECT|WITH|RETURNING)\b/i;

/**
 * The statements of a write-only transaction as ONE statement, or undefined
 * when they cannot be merged. Several data-modifying statements become the
 * CTEs of `WITH w0 AS (...), w1 AS (...) SELECT 1`: one round trip instead
 * of BEGIN, one per statement and COMMIT, and still atomic (a statement is
 * its own transaction). The CTEs run on one snapshot, in no defined order,
 * and none sees another's rows, so this is only equivalent to running them
 * in sequence when none depends on another's effect:
 *   - each is a plain INSERT, UPDATE or DELETE that reads no other table
 *     (no SELECT, WITH or RETURNING in its text);
 *   - each table is written by one statement, unless every statement on it
 *     carries DISJOINT_ROWS (db.ts): its author guarantees they touch
 *     different rows (e.g. a DELETE of the rows not re-inserted by an
 *     INSERT ... ON CONFLICT DO NOTHING).
 * A single statement is returned as it is.
 */
export function mergeWrites(stmts: readonly RecordedWrite[]): RecordedWrite | undefined {
  if (stmts.length === 1) return stmts[0];
  const byTable = new Map<string, number>();
  const disjoint = new Map<string, boolean>();
  let params = 0;
  for (const s of stmts) {
    const m = WRITE_HEAD.exec(s.sql);
    if (!m || READS.test(s.sql)) return undefined;
    const table = m[1]!.toLowerCase();
    byTable.set(table, (byTable.get(table) ?? 0) + 1);
    disjoint.set(table, (disjoint.get(table) ?? true) && s.sql.includes(DISJOINT_ROWS));
    params += s.params.length;
  }
  if (params > MERGE_MAX_PARAMS) return undefined;
  for (const [table, n] of byTable) if (n > 1 && !disjoint.get(table)) return undefined;
  return {
    sql: `WITH ${stmts.map((s, i) => `w${i} AS (${s.sql})`).join(', ')} SELECT 1`,
    params: stmts.flatMap((s) => s.params),
  };
}

function toPg(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  return v;
}

/**
 * Texts with parameters that recur (the cached ones) run as named prepared
 * statements: PostgreSQL parses each once per connection (pg prepares it on
 * a connection the first time it runs there) instead of at every call.
 * Texts without parameters (migrations: several statements in one text)
 * stay on the simple protocol.
 */
const statementNames = new Map<string, string>();

function queryConfig(sql: string, params: readonly unknown[]): pg.QueryConfig {
  const values = params.map(toPg);
  if (!values.length) return { text: rewritePlaceholders(sql), values };
  let name = statementNames.get(sql);
  if (name === undefined && statementNames.size < 5000) {
    name = `m${statementNames.size + 1}`;
    statementNames.set(sql, name);
  }
  return name === undefined ? { text: rewritePlaceholders(sql), values } : { name, text: rewritePlaceholders(sql), values };
}

class PgQueryable implements Queryable {
  readonly engine = 'postgres' as const;
  constructor(private readonly client: pg.Pool | pg.PoolClient) {}

  async query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const res = await this.client.query(queryConfig(sql, params));
    return res.rows as T[];
  }

  async queryOne<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, params))[0];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const res = await this.client.query(queryConfig(sql, params));
    return res.rowCount ?? 0;
  }
}

export class PostgresDb extends PgQueryable implements Db {
  readonly pool: pg.Pool;
  /** Transactions run on different connections of the pool, concurrently. */
  readonly concurrentWrites = true;

  constructor(opts: PostgresOptions) {
    const pool = new (loadPg().Pool)({
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 5432,
      user: opts.user ?? 'postgres',
      password: opts.password,
      database: opts.database ?? 'synapse',
      min: opts.min ?? 1,
      max: opts.max ?? 10,
      application_name: opts.applicationName ?? 'myelin',
    });
    super(pool);
    this.pool = pool;
    // A broken idle connection must not crash the process; the pool replaces it.
    pool.on('error', () => {});
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PgQueryable(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        /* connection gone: nothing to roll back */
      }
      throw e;
    } finally {
      client.release();
    }
  }

  /**
   * Writes only (reads throw; `execute` answers 0): the statements are
   * recorded, then sent as one statement when they can be merged
   * (`mergeWrites`), else as a transaction. The event persister's group
   * commit thus costs one round trip to PostgreSQL instead of about ten.
   */
  async writeOnlyTransaction(fn: (tx: Queryable) => Promise<void>): Promise<void> {
    const stmts: RecordedWrite[] = [];
    const readsNotAllowed = async (): Promise<never> => {
      throw new Error('writeOnlyTransaction: reads are not allowed');
    };
    await fn({
      engine: 'postgres',
      query: readsNotAllowed,
      queryOne: readsNotAllowed,
      execute: async (sql: string, params: readonly unknown[] = []) => {
        stmts.push({ sql, params });
        return 0;
      },
    });
    if (!stmts.length) return;
    const one = mergeWrites(stmts);
    if (one) {
      await this.pool.query(rewritePlaceholders(one.sql, stmts.length === 1), one.params.map(toPg));
      return;
    }
    await this.transaction(async (tx) => {
      for (const s of stmts) await tx.execute(s.sql, s.params);
    });
  }

  async exec(script: string): Promise<void> {
    await this.pool.query(script);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
