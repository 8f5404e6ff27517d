/**
 * Migrations run only on the main process (DESIGN.md §8). A worker waits
 * until every migration it knows is recorded in `schema_migrations`, then
 * starts; it gives up after `timeoutMs` with a message saying what is missing.
 */
import type { Logger } from 'pino';
import type { Db } from '../storage/db.js';
import { allMigrations } from '../storage/migrations/index.js';

export async function waitForSchema(db: Db, logger: Pick<Logger, 'info' | 'warn'>, timeoutMs = 120_000, pollMs = 500): Promise<void> {
  const expected = allMigrations.map((m) => m.name);
  const started = Date.now();
  let logged = false;
  for (;;) {
    let missing = expected;
    try {
      const done = new Set((await db.query<{ name: string }>('SELECT name FROM schema_migrations')).map((r) => r.name));
      missing = expected.filter((n) => !done.has(n));
    } catch {
      /* the table does not exist yet: the main process has not started */
    }
    if (!missing.length) {
      if (logged) logger.info('database schema is ready');
      return;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `the database schema is not up to date after ${Math.round(timeoutMs / 1000)} s (missing ${missing.length} migration(s), first ${missing[0]}): ` +
          'start (or upgrade) the main process, which applies migrations; workers never do',
      );
    }
    if (!logged) {
      logger.info(`waiting for the main process to apply ${missing.length} database migration(s) (first: ${missing[0]})`);
      logged = true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
