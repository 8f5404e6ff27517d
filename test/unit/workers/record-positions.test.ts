import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordPositionsWithEvents } from '../../../src/app/wire-rooms.js';
import type { Db } from '../../../src/storage/db.js';
import { migrate } from '../../../src/storage/migrate.js';
import { workersMigrations } from '../../../src/storage/migrations/workers.js';
import { openDatabase } from '../../../src/storage/open.js';
import { MultiWriterIdGenerator } from '../../../src/workers/multi-writer-id-generator.js';
import { createPgDatabase } from '../../helpers/homeserver.js';

// The positions an event persister records in the statement of its group commits (worker mode).
let drop: (() => Promise<void>) | undefined;
const dbs: Db[] = [];
let args: Record<string, unknown>;
const open = () => {
  const db = openDatabase({ name: 'psycopg2', args: args as any } as any, 'record-positions-test');
  dbs.push(db);
  return db;
};
beforeAll(async () => {
  const pg = await createPgDatabase('myelin_recpos');
  drop = pg.drop;
  args = pg.args;
  await migrate(open(), workersMigrations);
});
afterAll(async () => {
  for (const db of dbs) await db.close();
  await drop?.();
});

it('a batch retried alone after its group failed never marks the rolled-back recording as written', async () => {
  const db = open();
  const multi = await MultiWriterIdGenerator.create(db, {
    streamName: 'events',
    instanceName: 'p1',
    writers: ['p1', 'p2'],
    sequenceName: 'recpos_seq',
    blockTtlMs: 60_000,
  });
  const positions = recordPositionsWithEvents({ multi } as any);
  const row = async () =>
    Number((await db.queryOne<{ stream_id: string }>("SELECT stream_id FROM stream_positions WHERE stream_name = 'events' AND instance_name = 'p1'"))?.stream_id ?? 0);
  const events = (ids: number[]) => ids.map((streamOrdering) => ({ streamOrdering }));
  const b1 = await multi.allocateMany(2);
  const b2 = await multi.allocateMany(2);
  // The group of both batches records the row in its transaction, which then fails.
  const group = positions.rows(events([...b1, ...b2]));
  await expect(
    db.transaction(async (tx) => {
      await group.write(tx, group.rows);
      throw new Error('the group failed');
    }),
  ).rejects.toThrow('the group failed');
  // Its first batch, retried alone, commits; the second fails again.
  const one = positions.rows(events(b1));
  await db.transaction(async (tx) => one.write(tx, one.rows));
  for (const id of b1) multi.finish(id);
  positions.committed(events(b1));
  const two = positions.rows(events(b2));
  await expect(
    db.transaction(async (tx) => {
      await two.write(tx, two.rows);
      throw new Error('bad batch');
    }),
  ).rejects.toThrow('bad batch');
  for (const id of b2) multi.finish(id);
  // What answering b1's sends does: its position is in the database afterwards.
  await multi.persistOwn(b1[1]!);
  expect(await row()).toBeGreaterThanOrEqual(b1[1]!);
});
