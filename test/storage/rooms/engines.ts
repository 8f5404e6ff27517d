/** Runs a storage suite on SQLite (in memory) and on a fresh PostgreSQL database. */
import { afterAll, beforeAll, describe } from 'vitest';
import type { Db } from '../../../src/storage/db.js';
import { migrate } from '../../../src/storage/migrate.js';
import { roomsMigrations } from '../../../src/storage/migrations/rooms.js';
import { PostgresDb } from '../../../src/storage/postgres.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { createPgDatabase, shapesUnderTest } from '../../helpers/homeserver.js';

export function describeEngines(name: string, fn: (db: () => Db) => void): void {
  for (const engine of shapesUnderTest()) {
    describe(`${name} [${engine}]`, () => {
      let db: Db | undefined;
      let drop: (() => Promise<void>) | undefined;
      beforeAll(async () => {
        if (engine === 'sqlite') {
          db = new SqliteDb(':memory:');
        } else {
          const pg = await createPgDatabase('myelin_rooms');
          drop = pg.drop;
          const a = pg.args as any;
          db = new PostgresDb({ host: a.host, port: a.port, user: a.user, database: a.database, password: a.password, min: 1, max: 4 });
        }
        await migrate(db, roomsMigrations);
      });
      afterAll(async () => {
        await db?.close();
        await drop?.();
      });
      fn(() => db!);
    });
  }
}

/** The database with every query it is asked recorded in `statements` (writes are not recorded). */
export function countingQueries(db: Db): { db: Db; statements: string[] } {
  const statements: string[] = [];
  const counting = new Proxy(db, {
    get(target, prop) {
      const v = (target as any)[prop];
      if (prop === 'query' || prop === 'queryOne') return (sql: string, params?: unknown[]) => (statements.push(sql), v.call(target, sql, params));
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { db: counting, statements };
}
