/**
 * PostgreSQL engine on node-postgres with a connection pool.
 * `?` placeholders are rewritten to `$1..$n` (outside quoted strings).
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import type { Db, Queryable, Row } from './db.js';

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

export function rewritePlaceholders(sql: string): string {
  const hit = rewritten.get(sql);
  if (hit !== undefined) return hit;
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote) {
      out += c;
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else if (c === '?') {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  if (rewritten.size < 5000) rewritten.set(sql, out);
  return out;
}

function toPg(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  return v;
}

class PgQueryable implements Queryable {
  readonly engine = 'postgres' as const;
  constructor(private readonly client: pg.Pool | pg.PoolClient) {}

  async query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const res = await this.client.query(rewritePlaceholders(sql), params.map(toPg));
    return res.rows as T[];
  }

  async queryOne<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, params))[0];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const res = await this.client.query(rewritePlaceholders(sql), params.map(toPg));
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

  async exec(script: string): Promise<void> {
    await this.pool.query(script);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
