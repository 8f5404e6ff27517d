import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDatabase } from '../../helpers/homeserver.js';
import type { Db } from '../../../src/storage/db.js';
import { openDatabase } from '../../../src/storage/open.js';
import { workersMigrations } from '../../../src/storage/migrations/workers.js';
import { migrate } from '../../../src/storage/migrate.js';
import { MultiWriterIdGenerator } from '../../../src/workers/multi-writer-id-generator.js';
import { decodeSyncToken, emptyToken, encodeSyncToken } from '../../../src/streams/tokens.js';

describe('MultiWriterIdGenerator on PostgreSQL', () => {
  let drop: () => Promise<void>;
  const dbs: Db[] = [];
  let args: Record<string, unknown>;
  const open = () => {
    const db = openDatabase({ name: 'psycopg2', args: args as any } as any, 'mw-test');
    dbs.push(db);
    return db;
  };
  beforeAll(async () => {
    const pg = await createPgDatabase('myelin_mw');
    drop = pg.drop;
    args = pg.args;
    const db = open();
    await migrate(db, workersMigrations);
    await db.exec('CREATE TABLE ev (stream_ordering BIGINT NOT NULL, instance TEXT NOT NULL)');
    await db.execute("INSERT INTO ev VALUES (5, 'old')");
  });
  afterAll(async () => {
    for (const db of dbs) await db.close();
    await drop?.();
  });

  const opts = (instanceName: string) => ({
    streamName: 'events',
    instanceName,
    writers: ['p1', 'p2'],
    sequenceName: 'events_stream_seq',
    tables: [{ table: 'ev', column: 'stream_ordering' }],
  });

  it('shares one sequence, tracks per-writer positions and the minimum', async () => {
    const p1 = await MultiWriterIdGenerator.create(open(), opts('p1'));
    const p2 = await MultiWriterIdGenerator.create(open(), opts('p2'));
    const reader = await MultiWriterIdGenerator.create(open(), opts('generic1'));
    // the sequence starts above existing rows
    expect(p1.getWriterPosition('p1')).toBeGreaterThanOrEqual(5);
    // p2 had not started when p1 did: p1 cannot know where p2 stands yet
    expect(p1.getWriterPosition('p2')).toBe(0);
    const start = Math.max(p1.getWriterPosition('p1')!, p2.getWriterPosition('p2')!);
    p1.advanceWriter('p2', p2.getWriterPosition('p2')!);
    p2.advanceWriter('p1', p1.getWriterPosition('p1')!);

    const a = await p1.allocate(); // start+1
    const b = await p2.allocate(); // start+2
    const c = await p1.allocate(); // start+3
    expect([a, b, c]).toEqual([start + 1, start + 2, start + 3]);

    // p2 finishes b: its own position reaches b, but p1 still has a in flight
    p2.finish(b);
    expect(p2.getWriterPosition('p2')).toBe(b);
    p1.advanceWriter('p2', b);
    expect(p1.getWriterPosition('p1')).toBe(a - 1);
    expect(p1.getCurrent()).toBe(a - 1);
    expect(p1.getPosition()).toEqual({ min: a - 1, writers: { p2: b } });

    // c finishes before a: p1 must not move past a
    p1.finish(c);
    expect(p1.getWriterPosition('p1')).toBe(a - 1);
    p1.finish(a);
    expect(p1.getWriterPosition('p1')).toBe(c);
    expect(p1.getCurrent()).toBe(b);

    // p2 is idle: learning that p1 reached c moves it to c too, so the minimum advances
    p2.advanceWriter('p1', c);
    expect(p2.getWriterPosition('p2')).toBe(c);
    expect(p2.getPosition()).toEqual({ min: c });

    // positions are persisted: a process starting later sees them
    await p1.persist();
    await p2.persist();
    await reader.reloadPositions();
    expect(reader.getPosition()).toEqual({ min: c });
    const late = await MultiWriterIdGenerator.create(open(), opts('generic2'));
    expect(late.getCurrent()).toBe(c);
    await expect(reader.allocate()).rejects.toThrow(/not a writer/);
  });

  it('a restarted writer continues above everything drawn before', async () => {
    const again = await MultiWriterIdGenerator.create(open(), opts('p1'));
    const id = await again.allocate();
    expect(id).toBeGreaterThan(again.getWriterPosition('p1')!);
    again.finish(id);
    expect(again.getWriterPosition('p1')).toBe(id);
  });

  it('positions fit the sync token events part', () => {
    const t = emptyToken();
    t.events = { min: 10, writers: { p1: 12, 'p2_x.y': 15 } };
    expect(decodeSyncToken(encodeSyncToken(t)).events).toEqual(t.events);
    expect(MultiWriterIdGenerator.isVisible(t.events, 'p1', 12)).toBe(true);
    expect(MultiWriterIdGenerator.isVisible(t.events, 'p1', 13)).toBe(false);
    expect(MultiWriterIdGenerator.isVisible(t.events, 'other', 10)).toBe(true);
    expect(MultiWriterIdGenerator.isVisible(t.events, 'other', 11)).toBe(false);
  });
});

describe('MultiWriterIdGenerator on SQLite (single process)', () => {
  it('counts in memory above the table', async () => {
    const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } } as any);
    await migrate(db, workersMigrations);
    await db.exec('CREATE TABLE ev (stream_ordering BIGINT NOT NULL)');
    await db.execute('INSERT INTO ev VALUES (3)');
    const g = await MultiWriterIdGenerator.create(db, { streamName: 'events', instanceName: 'master', writers: ['master'], sequenceName: 'events_stream_seq', tables: [{ table: 'ev', column: 'stream_ordering' }] });
    const seen: number[] = [];
    g.onAdvance((p) => seen.push(p.min));
    const ids = await g.allocateMany(2);
    expect(ids).toEqual([4, 5]);
    g.finish(5);
    expect(g.getCurrent()).toBe(3);
    g.finish(4);
    expect(g.getCurrent()).toBe(5);
    expect(seen).toEqual([5]);
    await g.persist();
    expect(await db.queryOne('SELECT stream_id FROM stream_positions WHERE stream_name = ? AND instance_name = ?', ['events', 'master'])).toEqual({ stream_id: 5 });
    await db.close();
  });

  it('keeps recording after a persist() that had nothing to write', async () => {
    const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } } as any);
    await migrate(db, workersMigrations);
    const g = await MultiWriterIdGenerator.create(db, { streamName: 'events', instanceName: 'master', writers: ['master'], sequenceName: 'events_stream_seq' });
    const recorded = async () => Number((await db.queryOne<{ stream_id: number }>('SELECT stream_id FROM stream_positions WHERE stream_name = ?', ['events']))?.stream_id);
    await g.persist(); // nothing new: ends at once (it once left a settled promise behind that swallowed every later call)
    await g.withNext(async () => {});
    await g.persist();
    expect(await recorded()).toBe(g.getCurrent());
    await g.persist();
    await g.withNext(async () => {});
    await g.persist();
    expect(await recorded()).toBe(g.getCurrent());
    await db.close();
  });
});
