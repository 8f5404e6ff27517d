/**
 * A PostgreSQL database for unit tests of the worker streams: a fresh
 * database (MYELIN_TEST_PG) with the workers migrations (stream_positions,
 * the events sequence, ...) and a stand-in `events` table holding only
 * `stream_ordering`, which is all the events stream id generators read.
 * `open()` gives each simulated process a connection pool of its own;
 * `close()` closes them all and drops the database.
 */
import type { Db } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrate.js';
import { workersMigrations } from '../../src/storage/migrations/workers.js';
import { openDatabase } from '../../src/storage/open.js';
import { createPgDatabase } from './homeserver.js';

export class WorkersPgDatabase {
  /** Every pool opened so far, in order (the first one ran the migrations). */
  readonly dbs: Db[] = [];

  private constructor(
    private readonly args: Record<string, unknown>,
    private readonly appName: string,
    private readonly drop: () => Promise<void>,
  ) {}

  /** Creates the database (named `<prefix>_...`) and its tables. */
  static async create(prefix: string, appName: string): Promise<WorkersPgDatabase> {
    const pg = await createPgDatabase(prefix);
    const fixture = new WorkersPgDatabase(pg.args, appName, pg.drop);
    try {
      const db = fixture.open();
      await migrate(db, workersMigrations);
      await db.exec('CREATE TABLE events (stream_ordering BIGINT NOT NULL)');
    } catch (e) {
      await fixture.close();
      throw e;
    }
    return fixture;
  }

  /** A new connection pool to the database (one per simulated process). */
  open(): Db {
    const db = openDatabase({ name: 'psycopg2', args: this.args } as Parameters<typeof openDatabase>[0], this.appName);
    this.dbs.push(db);
    return db;
  }

  async close(): Promise<void> {
    for (const db of this.dbs.splice(0)) await db.close().catch(() => {});
    await this.drop();
  }
}
