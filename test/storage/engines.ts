/**
 * Opens each database engine for storage tests: a SQLite file in a temporary
 * directory and a fresh PostgreSQL database (MYELIN_TEST_PG), dropped after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import type { Db } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrate.js';
import { allMigrations } from '../../src/storage/migrations/index.js';
import { PostgresDb } from '../../src/storage/postgres.js';
import { SqliteDb } from '../../src/storage/sqlite.js';
import { createPgDatabase } from '../helpers/homeserver.js';

export type EngineName = 'sqlite' | 'postgres';

export async function openEngine(engine: EngineName, opts: { migrate?: boolean } = {}): Promise<{ db: Db; cleanup: () => Promise<void> }> {
  let db: Db;
  let cleanup: () => Promise<void>;
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-storage-'));
    db = new SqliteDb(join(dir, 'test.db'));
    cleanup = async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    };
  } else {
    const pg = await createPgDatabase('myelin_storage');
    const a = pg.args as any;
    db = new PostgresDb({ host: a.host, port: a.port, user: a.user, password: a.password, database: a.database, max: 5 });
    cleanup = async () => {
      await db.close();
      await pg.drop();
    };
  }
  if (opts.migrate !== false) await migrate(db);
  return { db, cleanup };
}

/** Runs a suite on both engines; `db()` is the current engine's database. */
export function describeEngines(name: string, fn: (db: () => Db, engine: EngineName) => void, opts: { migrate?: boolean } = {}): void {
  for (const engine of ['sqlite', 'postgres'] as const) {
    describe(`${name} [${engine}]`, () => {
      let handle: { db: Db; cleanup: () => Promise<void> } | undefined;
      beforeAll(async () => {
        handle = await openEngine(engine, opts);
      });
      afterAll(async () => {
        await handle?.cleanup();
      });
      fn(() => handle!.db, engine);
    });
  }
}

/**
 * Applies the migrations up to and including `name`: a test of a later
 * migration writes the older schema's rows there, then migrates the rest.
 */
export async function migrateThrough(db: Db, name: string): Promise<void> {
  const upTo = allMigrations.findIndex((m) => m.name === name);
  if (upTo < 0) throw new Error(`no migration named ${name}`);
  await migrate(db, allMigrations.slice(0, upTo + 1));
}
