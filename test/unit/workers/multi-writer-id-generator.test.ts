import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDatabase } from '../../helpers/homeserver.js';
import type { Db } from '../../../src/storage/db.js';
import { openDatabase } from '../../../src/storage/open.js';
import { workersMigrations } from '../../../src/storage/migrations/workers.js';
import { migrate } from '../../../src/storage/migrate.js';
import { MultiWriterIdGenerator } from '../../../src/workers/multi-writer-id-generator.js';
import { recordPositionsWithEvents } from '../../../src/app/wire-rooms.js';
import { decodeSyncToken, emptyToken, encodeSyncToken, eventsPositionFor } from '../../../src/streams/tokens.js';
import { MultiWriterEventsStream } from '../../../src/workers/events-stream.js';

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
    // Long enough that a slow machine does not drop a block between two steps of a test.
    blockTtlMs: 1500,
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

    // Each writer draws a block of positions at once and hands them out in order.
    const a = await p1.allocate(); // start+1 (p1's block: start+1 ..)
    const b = await p2.allocate(); // p2's block, drawn after p1's
    const c = await p1.allocate(); // start+2, from p1's block
    expect([a, c]).toEqual([start + 1, start + 2]);
    expect(b).toBeGreaterThan(start + 100);

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
    // Nothing in flight, but the rest of its block (c+1 ..) is still to be handed out: p1 stays below it.
    expect(p1.getWriterPosition('p1')).toBe(c);
    expect(p1.getCurrent()).toBe(c);
    expect(p1.getPosition()).toEqual({ min: c, writers: { p2: b } });

    // Shortly after, the rest of p1's block is dropped (a gap): idle, it follows p2.
    await new Promise((r) => setTimeout(r, 1700));
    expect(p1.getWriterPosition('p1')).toBe(b);
    expect(p1.getPosition()).toEqual({ min: b });
    // p2's block was dropped too; learning where p1 stands keeps it where it is.
    p2.advanceWriter('p1', b);
    expect(p2.getPosition()).toEqual({ min: b });
    // The next write draws a new block, above everything before.
    const d = await p1.allocate();
    expect(d).toBeGreaterThan(b + 99);
    p1.finish(d);
    expect(p1.getWriterPosition('p1')).toBe(d);
    p2.advanceWriter('p1', d);
    expect(p2.getWriterPosition('p2')).toBe(d); // idle, no block: follows at once
    const end = d;

    // positions are persisted: a process starting later sees them
    await p1.persist();
    await p2.persist();
    await reader.reloadPositions();
    expect(reader.getPosition()).toEqual({ min: end });
    const late = await MultiWriterIdGenerator.create(open(), opts('generic2'));
    expect(late.getCurrent()).toBe(end);
    await expect(reader.allocate()).rejects.toThrow(/not a writer/);
  });

  it('a restarted writer continues above everything drawn before', async () => {
    const again = await MultiWriterIdGenerator.create(open(), opts('p1'));
    const id = await again.allocate();
    expect(id).toBeGreaterThan(again.getWriterPosition('p1')!);
    again.finish(id);
    expect(again.getWriterPosition('p1')).toBe(id);
  });

  it('a single writer draws its positions in blocks, never exposing what it has not handed out', async () => {
    const solo = { streamName: 'solo_stream', instanceName: 'solo', writers: ['solo'], sequenceName: 'solo_seq' };
    const db = open();
    const g = await MultiWriterIdGenerator.create(db, solo);
    const seqAt = async () => Number((await db.queryOne<{ last_value: string }>('SELECT last_value FROM solo_seq'))!.last_value);
    const [a, b] = await Promise.all([g.allocate(), g.allocate()]);
    const more = await g.allocateMany(20);
    expect([a, b, ...more]).toEqual(Array.from({ length: 22 }, (_, i) => a + i));
    const drawn = await seqAt();
    expect(drawn).toBeGreaterThanOrEqual(a + 99); // one statement drew the whole block
    for (const id of [a, b, ...more]) g.finish(id);
    expect(g.getWriterPosition('solo')).toBe(more[19]); // what it handed out, not the block's end
    // A restart continues above the whole block.
    const again = await MultiWriterIdGenerator.create(open(), solo);
    expect(await again.allocate()).toBeGreaterThan(drawn);
  });

  it('with several writers, a writer never claims positions of its block it has not handed out, and drops the rest soon', async () => {
    const db = open();
    const o = { streamName: 'blk_stream', instanceName: 'w1', writers: ['w1', 'w2'], sequenceName: 'blk_seq', blockTtlMs: 1500 };
    const g = await MultiWriterIdGenerator.create(db, o);
    const seqAt = async () => Number((await db.queryOne<{ last_value: string }>('SELECT last_value FROM blk_seq'))!.last_value);
    const x = await g.allocate();
    const drawn = await seqAt();
    expect(drawn).toBeGreaterThanOrEqual(x + 99); // one statement drew a block
    const y = await g.allocate();
    expect(y).toBe(x + 1);
    expect(await seqAt()).toBe(drawn); // no statement for the second
    g.finish(x);
    g.finish(y);
    // The other writer drew after us and finished far above our block's unused rest.
    await db.query('SELECT setval(?, ?)', ['blk_seq', drawn + 50]);
    g.advanceWriter('w2', drawn + 50);
    expect(g.getWriterPosition('w1')).toBe(y); // not drawn + 50: x+2 .. are still ours to hand out
    // Positions are in flight from the moment they leave the block, before the caller resumes.
    const pending = g.allocate();
    g.advanceWriter('w2', drawn + 50);
    const z = await pending;
    expect(z).toBe(y + 1);
    expect(g.getWriterPosition('w1')).toBe(y);
    g.finish(z);
    expect(g.getWriterPosition('w1')).toBe(z);
    // The rest is dropped shortly after the draw: then it follows.
    await new Promise((r) => setTimeout(r, 1700));
    expect(g.getWriterPosition('w1')).toBe(drawn + 50);
    const next = await g.allocate();
    expect(next).toBeGreaterThan(drawn + 50);
    g.finish(next);
  });

  it('with several writers, a block that expires half unused makes the next draw smaller, and one used up makes it larger', async () => {
    const db = open();
    const o = { streamName: 'adapt_stream', instanceName: 'w1', writers: ['w1', 'w2'], sequenceName: 'adapt_seq', blockTtlMs: 600_000 };
    const g = await MultiWriterIdGenerator.create(db, o);
    const seqAt = async () => Number((await db.queryOne<{ last_value: string }>('SELECT last_value FROM adapt_seq'))!.last_value);
    const take = async () => {
      const id = await g.allocate();
      g.finish(id);
      return id;
    };
    const start = await seqAt();
    await take();
    expect((await seqAt()) - start).toBeGreaterThanOrEqual(99); // the first block: 100 positions (a fresh sequence starts at its last_value)
    // One write, then the block expires: the next draw takes what it served, twice.
    g.dropBlockRest();
    let before = await seqAt();
    await take();
    expect((await seqAt()) - before).toBe(2);
    await take(); // from the same block
    expect((await seqAt()) - before).toBe(2);
    // Used up before it expired: the next one is twice as large.
    before = await seqAt();
    const a = await take();
    expect((await seqAt()) - before).toBe(4);
    for (let i = 0; i < 3; i++) expect(await take()).toBe(a + 1 + i);
    expect((await seqAt()) - before).toBe(4);
    await take();
    expect((await seqAt()) - before).toBe(4 + 8);
    // Expired after one write again: the position follows the others past the dropped rest.
    g.dropBlockRest();
    g.advanceWriter('w2', (await seqAt()) + 10);
    expect(g.getWriterPosition('w1')).toBe((await seqAt()) + 10);
  });

  it('a writer whose draw is running does not follow the others past the positions it is about to get', async () => {
    const db = open();
    const o = { streamName: 'race_stream', instanceName: 'w1', writers: ['w1', 'w2'], sequenceName: 'race_seq' };
    const g = await MultiWriterIdGenerator.create(db, o);
    const before = g.getWriterPosition('w1')!;
    // Hold the draw until the other writer's (later, higher) position has arrived.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const gdb = (g as any).db;
    const query = gdb.query.bind(gdb);
    gdb.query = async (sql: string, params?: unknown[]) => {
      const rows = await query(sql, params);
      if (/nextval/.test(sql)) await held;
      return rows;
    };
    const pending = g.allocate();
    await new Promise((r) => setTimeout(r, 30)); // the draw has run in PostgreSQL, its answer not yet handled
    g.advanceWriter('w2', before + 1_000_000);
    expect(g.getWriterPosition('w1')).toBeLessThanOrEqual(before);
    release();
    const id = await pending;
    expect(id).toBeGreaterThan(g.getWriterPosition('w1')!);
    g.finish(id);
    expect(g.getWriterPosition('w1')).toBe(id);
  });

  it('records with a commit the position its writes reach, counting every other write in flight as unfinished', async () => {
    const g = await MultiWriterIdGenerator.create(open(), { ...opts('p1'), streamName: 'rec_stream', writers: ['p1'] });
    const [x, y] = await g.allocateMany(2);
    // y commits while x is still in flight: only what is below x may be claimed, which is recorded already.
    expect(g.recordWith([y!])).toBeUndefined();
    expect(g.recordWith([x!, y!])!.rows).toEqual([['p1', y!]]);
    expect(g.recordWith([12345])).toBeUndefined(); // not in flight here
    // The commit's statement is the same upsert persist() runs.
    const rec = g.recordWith([x!, y!])!;
    const db = open();
    await db.execute(rec.sql, rec.params);
    g.markRecorded(rec.rows);
    g.finish(x!);
    g.finish(y!);
    const executed: string[] = [];
    const gdb = (g as any).db;
    const execute = gdb.execute.bind(gdb);
    gdb.execute = (sql: string, params: unknown[]) => (executed.push(sql), execute(sql, params));
    await g.persist(); // nothing left to record
    expect(executed).toEqual([]);
    expect(Number((await db.queryOne<{ stream_id: string }>("SELECT stream_id FROM stream_positions WHERE stream_name = 'rec_stream' AND instance_name = 'p1'"))!.stream_id)).toBe(y);
  });

  it("records with a commit only its own row, even when another writer's position moved (no cross-persister row locks)", async () => {
    const g = await MultiWriterIdGenerator.create(open(), { ...opts('p1'), streamName: 'rec2_stream', writers: ['p1', 'p2'] });
    g.advanceWriter('p2', 1_000_000);
    const [x] = await g.allocateMany(1);
    expect(g.recordWith([x!])!.rows.map(([w]) => w)).toEqual(['p1']);
    g.finish(x!);
  });

  it("a reader's minimum, per-writer positions and positionFor follow the writers it hears of", async () => {
    // Writers nobody recorded yet: both start at 0.
    const reader = await MultiWriterIdGenerator.create(open(), { ...opts('generic3'), writers: ['q1', 'q2'] });
    const stream = new MultiWriterEventsStream(reader);
    const mins: number[] = [];
    stream.onAdvance((m) => mins.push(m));
    const check = () => {
      const pos = reader.getPosition();
      // The kept minimum is the lowest writer position; positionFor agrees with the token's events part.
      expect(reader.getCurrent()).toBe(Math.min(reader.getWriterPosition('q1')!, reader.getWriterPosition('q2')!));
      expect(pos.min).toBe(reader.getCurrent());
      for (const w of ['q1', 'q2', 'nobody']) expect(stream.positionFor(w)).toBe(eventsPositionFor(pos, w));
    };
    check();
    expect(reader.getPosition()).toEqual({ min: 0 });
    reader.advanceWriter('q1', 10);
    check();
    expect(reader.getPosition()).toEqual({ min: 0, writers: { q1: 10 } });
    expect(stream.positionFor('q1')).toBe(10);
    reader.advanceWriter('q2', 4);
    check();
    reader.advanceWriter('q2', 12);
    check();
    expect(reader.getPosition()).toEqual({ min: 10, writers: { q2: 12 } });
    reader.advanceWriter('q1', 12);
    check();
    expect(reader.getPosition()).toEqual({ min: 12 });
    // Lower positions and unknown writers change nothing.
    reader.advanceWriter('q1', 1);
    reader.advanceWriter('nobody', 50);
    check();
    expect(reader.getCurrent()).toBe(12);
    expect(mins).toEqual([0, 4, 10, 12]);
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

  it('the positions recorded with group commits: a batch retried alone after its group failed never marks the rolled-back recording as written', async () => {
    const db = open();
    const multi = await MultiWriterIdGenerator.create(db, {
      streamName: 'recpos_stream',
      instanceName: 'p1',
      writers: ['p1', 'p2'],
      sequenceName: 'recpos_seq',
      blockTtlMs: 60_000,
    });
    const positions = recordPositionsWithEvents({ multi } as any);
    const row = async () =>
      Number((await db.queryOne<{ stream_id: string }>("SELECT stream_id FROM stream_positions WHERE stream_name = 'recpos_stream' AND instance_name = 'p1'"))?.stream_id ?? 0);
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

  it('a persist() waits for one round that starts after it, not for the rounds later writes ask for', async () => {
    const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } } as any);
    await migrate(db, workersMigrations);
    const g = await MultiWriterIdGenerator.create(db, { streamName: 'events', instanceName: 'master', writers: ['master'], sequenceName: 'events_stream_seq' });
    // From now on each recording statement waits until the test lets it run.
    const held: Array<() => void> = [];
    const execute = db.execute.bind(db);
    (db as any).execute = (sql: string, params: unknown[]) => new Promise<void>((resolve) => held.push(resolve)).then(() => execute(sql, params));
    const tick = () => new Promise((r) => setImmediate(r));
    await g.withNext(async () => {}); // round 1 starts (held)
    await tick();
    expect(held).toHaveLength(1);
    // Nothing new since round 1 began: wait for round 1 only.
    let firstDone = false;
    void g.persist().then(() => (firstDone = true));
    await g.withNext(async () => {}); // asks for round 2
    let done = false;
    const caller = g.persist().then(() => (done = true)); // round 2 records what the caller knows
    held.shift()!();
    await tick();
    expect(firstDone).toBe(true);
    expect(done).toBe(false);
    expect(held).toHaveLength(1); // round 2 running
    await g.withNext(async () => {}); // a later write asks for round 3
    held.shift()!();
    await caller; // resolved by round 2, while round 3 is held
    expect(held).toHaveLength(1);
    const recorded = await db.queryOne<{ stream_id: number }>('SELECT stream_id FROM stream_positions WHERE stream_name = ?', ['events']);
    expect(Number(recorded?.stream_id)).toBe(g.getCurrent() - 1);
    held.shift()!();
    await g.persist();
    expect(Number((await db.queryOne<{ stream_id: number }>('SELECT stream_id FROM stream_positions WHERE stream_name = ?', ['events']))?.stream_id)).toBe(g.getCurrent());
    // Everything recorded: no statement at all.
    await g.persist();
    expect(held).toHaveLength(0);
    await db.close();
  });

  it('a commit that recorded its position in its own transaction runs no statement of its own after finishing', async () => {
    const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } } as any);
    await migrate(db, workersMigrations);
    const g = await MultiWriterIdGenerator.create(db, { streamName: 'events', instanceName: 'master', writers: ['master'], sequenceName: 'events_stream_seq' });
    const ids = await g.allocateMany(2);
    const rec = g.recordWith(ids)!;
    await db.execute(rec.sql, rec.params); // in the events' transaction
    const executed: string[] = [];
    const execute = db.execute.bind(db);
    (db as any).execute = (sql: string, params: unknown[]) => (executed.push(sql), execute(sql, params));
    const tick = () => new Promise((r) => setImmediate(r));
    // The event creator finishes the ids, then reports the commit, in one turn.
    for (const id of ids) g.finish(id);
    g.markRecorded(rec.rows);
    await tick();
    expect(executed).toEqual([]);
    await g.persist();
    expect(executed).toEqual([]);
    // A write that recorded nothing with its commit is recorded by the generator.
    await g.withNext(async () => {});
    await tick();
    expect(executed).toHaveLength(1);
    expect(Number((await db.queryOne<{ stream_id: number }>('SELECT stream_id FROM stream_positions WHERE stream_name = ?', ['events']))?.stream_id)).toBe(g.getCurrent());
    await db.close();
  });

  it('with several writers, a commit that also moved the position past the others is answered without a statement; the following is recorded later', async () => {
    const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } } as any);
    await migrate(db, workersMigrations);
    const g = await MultiWriterIdGenerator.create(db, { streamName: 'events', instanceName: 'a', writers: ['a', 'b'], sequenceName: 'events_stream_seq' });
    const [x] = await g.allocateMany(1);
    const rec = g.recordWith([x!])!;
    await db.execute(rec.sql, rec.params);
    g.advanceWriter('b', x! + 5); // b wrote meanwhile
    await new Promise((r) => setTimeout(r, 300)); // (what following that cost before our commit)
    const executed: string[] = [];
    const execute = db.execute.bind(db);
    (db as any).execute = (sql: string, params: unknown[]) => (executed.push(sql), execute(sql, params));
    g.finish(x!);
    g.markRecorded(rec.rows);
    expect(g.getWriterPosition('a')).toBe(x! + 5); // nothing in flight: follows b at once
    await g.persistOwn(x!); // what answering the write needs: recorded with the commit
    await new Promise((r) => setImmediate(r));
    expect(executed).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(executed).toHaveLength(1); // the following, once
    const rows = await db.query<{ instance_name: string; stream_id: number }>('SELECT instance_name, stream_id FROM stream_positions ORDER BY instance_name');
    expect(rows.map((r) => [r.instance_name, Number(r.stream_id)])).toEqual([['a', x! + 5], ['b', x! + 5]]);
    await db.close();
  });

  it('an idle writer records the positions it follows to at most every 250 ms, not once per followed write', async () => {
    const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } } as any);
    await migrate(db, workersMigrations);
    const g = await MultiWriterIdGenerator.create(db, { streamName: 'events', instanceName: 'a', writers: ['a', 'b'], sequenceName: 'events_stream_seq' });
    const executed: string[] = [];
    const execute = db.execute.bind(db);
    (db as any).execute = (sql: string, params: unknown[]) => (executed.push(sql), execute(sql, params));
    for (let p = 1; p <= 20; p++) g.advanceWriter('b', p);
    expect(g.getWriterPosition('a')).toBe(20); // followed at once
    await new Promise((r) => setTimeout(r, 20));
    expect(executed).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(executed).toHaveLength(1);
    const rows = await db.query<{ instance_name: string; stream_id: number }>('SELECT instance_name, stream_id FROM stream_positions ORDER BY instance_name');
    expect(rows.map((r) => [r.instance_name, Number(r.stream_id)])).toEqual([['a', 20], ['b', 20]]);
    await db.close();
  });
});
