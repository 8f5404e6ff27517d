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
/** After the head: what reads another table or answers rows. */
const READS = /\b(?:SELECT|WITH|RETURNING|FROM|JOIN|USING)\b/i;
/** Rows from array parameters (db.ts `unnestRows`): a SELECT that reads no table. */
const UNNEST_ROWS = /\bSELECT \* FROM unnest\(\?::[a-z]+\[\](?:, \?::[a-z]+\[\])*\)/g;

/** What `mergeWrites` needs to know of a statement's text: its table, or null when it cannot be merged. */
interface WriteShape {
  table: string | null;
  disjoint: boolean;
}
/** Shapes by text (a group commit's texts recur: they do not depend on row counts). */
const writeShapes = new Map<string, WriteShape>();

function writeShape(sql: string): WriteShape {
  let shape = writeShapes.get(sql);
  if (shape) return shape;
  const m = WRITE_HEAD.exec(sql);
  shape = {
    table: m && !READS.test(sql.slice(m[0].length).replace(UNNEST_ROWS, '')) ? m[1]!.toLowerCase() : null,
    disjoint: sql.includes(DISJOINT_ROWS),
  };
  if (writeShapes.size < 5000) writeShapes.set(sql, shape);
  return shape;
}

/**
 * The statements of a write-only transaction as ONE statement, or undefined
 * when they cannot be merged. Several data-modifying statements become the
 * CTEs of `WITH w0 AS (...), w1 AS (...) SELECT 1`: one round trip instead
 * of BEGIN, one per statement and COMMIT, and still atomic (a statement is
 * its own transaction). The CTEs run on one snapshot, in no defined order,
 * and none sees another's rows, so this is only equivalent to running them
 * in sequence when none depends on another's effect:
 *   - each is a plain INSERT, UPDATE or DELETE that reads no other table
 *     (no SELECT, WITH, RETURNING, FROM, JOIN or USING after its head, but
 *     for rows from array parameters: `SELECT * FROM unnest(?::type[], ...)`);
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
    const { table, disjoint: d } = writeShape(s.sql);
    if (table === null) return undefined;
    byTable.set(table, (byTable.get(table) ?? 0) + 1);
    disjoint.set(table, (disjoint.get(table) ?? true) && d);
    params += s.params.length;
  }
  if (params > MERGE_MAX_PARAMS) return undefined;
  for (const [table, n] of byTable) if (n > 1 && !disjoint.get(table)) return undefined;
  return {
    sql: `WITH ${stmts.map((s, i) => `w${i} AS (${s.sql})`).join(', ')} SELECT 1`,
    params: stmts.flatMap((s) => s.params),
  };
}

const BACKSLASHES = /\\/g;
const QUOTES = /"/g;

/**
 * A JS array as a PostgreSQL array literal: what node-postgres would send
 * for it, for about two thirds of its CPU. Strings quoted, `"` and `\`
 * escaped; numbers as they are; booleans as 0/1 (the INTEGER columns that
 * hold them, as for a single value); null and undefined as NULL. Flat
 * arrays only.
 */
export function pgArrayLiteral(xs: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < xs.length; i++) {
    if (i) out += ',';
    const v = xs[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number' || typeof v === 'bigint') out += String(v);
    else if (typeof v === 'boolean') out += v ? '1' : '0';
    else {
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      // Two plain replaces beat one with a `$&` template (measured); most strings have neither character.
      out += '"' + (s.includes('"') || s.includes('\\') ? s.replace(BACKSLASHES, '\\\\').replace(QUOTES, '\\"') : s) + '"';
    }
  }
  return out + '}';
}

function toPg(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  if (Array.isArray(v)) return pgArrayLiteral(v);
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

/** Write-only transactions' texts seen once: named from their second run on (a one-off text takes no name). */
const writesSeenOnce = new Set<string>();

/**
 * A write-only transaction's statement (merged or single): the event
 * persister's group commits recur with a handful of texts (they depend on
 * which tables a group writes, not on its row counts), which run as named
 * statements like any other (`queryConfig`); a text not seen before runs
 * unnamed.
 */
function writeConfig(sql: string, params: readonly unknown[]): pg.QueryConfig {
  if (!statementNames.has(sql)) {
    if (!writesSeenOnce.has(sql)) {
      if (writesSeenOnce.size >= 1000) writesSeenOnce.clear();
      writesSeenOnce.add(sql);
      return { text: rewritePlaceholders(sql, false), values: params.map(toPg) };
    }
    writesSeenOnce.delete(sql);
  }
  return queryConfig(sql, params);
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
      await this.pool.query(writeConfig(one.sql, one.params));
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
