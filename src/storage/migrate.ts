/**
 * Applies pending migrations in order, each in its own transaction, and
 * records them in `schema_migrations`. Concurrent starters on PostgreSQL are
 * serialised with an advisory lock.
 */
import type { Db } from './db.js';
import { PostgresDb } from './postgres.js';
import { allMigrations } from './migrations/index.js';
import type { Migration } from './migrations/types.js';

const LOCK_ID = 0x6d79656c; // "myel"

export async function migrate(db: Db, migrations: Migration[] = allMigrations): Promise<string[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_ts BIGINT NOT NULL)`);
  const applied: string[] = [];
  const run = async () => {
    const done = new Set((await db.query<{ name: string }>('SELECT name FROM schema_migrations')).map((r) => r.name));
    for (const m of migrations) {
      if (done.has(m.name)) continue;
      const sql = typeof m.sql === 'string' ? m.sql : m.sql[db.engine];
      await db.transaction(async (tx) => {
        if (db.engine === 'postgres') {
          await tx.query(sql);
        } else {
          // better-sqlite3 prepares one statement at a time
          for (const stmt of splitStatements(sql)) await tx.execute(stmt);
        }
        await tx.execute('INSERT INTO schema_migrations (name, applied_ts) VALUES (?, ?)', [m.name, Date.now()]);
      });
      applied.push(m.name);
    }
  };
  if (db instanceof PostgresDb) {
    // A session-level advisory lock keeps two starting processes from
    // migrating at once; the second one then finds nothing left to do.
    const client = await db.pool.connect();
    try {
      await client.query(`SELECT pg_advisory_lock(${LOCK_ID})`);
      try {
        await run();
      } finally {
        await client.query(`SELECT pg_advisory_unlock(${LOCK_ID})`);
      }
    } finally {
      client.release();
    }
  } else {
    await run();
  }
  return applied;
}

/** Splits a script on semicolons at the end of statements (no semicolons inside literals or triggers). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
