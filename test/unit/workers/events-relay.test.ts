/**
 * Two event persisters and a reader on a fake Redis (PostgreSQL for the
 * shared sequence): the idle persister tells only the writers that it
 * followed (a POSITION on their own channels, shortly after), the writing
 * persister sends no POSITION when its row says where it stands, and it
 * publishes its row once its own position covers it, carrying the other
 * writers' positions. A process that only follows gets one message per event, and
 * that message is readable at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkersPgDatabase } from '../../helpers/workers-pg.js';
import { Notifier } from '../../../src/streams/notifier.js';
import { emptyToken } from '../../../src/streams/tokens.js';
import { MultiWriterEventsStream } from '../../../src/workers/events-stream.js';
import { StreamReplicator } from '../../../src/workers/stream-replication.js';
import { FakeBus } from './fake-bus.js';

const WRITERS = ['p1', 'p2'];
const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('events rows with several persisters', () => {
  let pg: WorkersPgDatabase;
  const reps: StreamReplicator[] = [];
  beforeAll(async () => {
    pg = await WorkersPgDatabase.create('myelin_relay', 'relay-test');
  });
  afterAll(async () => {
    for (const r of reps) r.stop();
    await pg?.close();
  });

  async function proc(bus: FakeBus, me: string) {
    const db = pg.open();
    const events = await MultiWriterEventsStream.open(db, me, WRITERS);
    const streams = { events };
    const notifier = new Notifier(streams);
    const rep = new StreamReplicator({
      instanceName: me,
      writersOf: (s) => (s === 'events' ? WRITERS : ['master']),
      streams,
      notifier,
      transport: bus.transport(me),
      readPositions: () => db.query('SELECT stream_name, instance_name, stream_id FROM stream_positions'),
      persistPosition: async (stream, instance, position) => {
        await db.execute(
          `INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES (?, ?, ?)
           ON CONFLICT (stream_name, instance_name) DO UPDATE SET stream_id = excluded.stream_id WHERE stream_positions.stream_id < excluded.stream_id`,
          [stream, instance, position],
        );
      },
    });
    reps.push(rep);
    await rep.start();
    return { events, notifier, rep };
  }

  it('a follower gets one message per event, readable at once; the writer settles', async () => {
    const bus = new FakeBus({ async: true });
    const p1 = await proc(bus, 'p1');
    const p2 = await proc(bus, 'p2');
    const reader = await proc(bus, 'reader');
    // Let the start-up announcements go round.
    await until(() => reader.events.getCurrent() === p1.events.getCurrent() && p1.events.getCurrent() === p2.events.getCurrent());
    bus.log.length = 0;

    const since = { ...emptyToken(), events: { min: reader.events.getCurrent() } };
    const woke = reader.notifier.waitForChange('@u:x', ['!r:x'], since, 5000);
    const pos = await p1.events.withNext(async (id) => id);
    p1.notifier.notify({ stream: 'events', position: pos, rooms: ['!r:x'] });
    const settled = await p1.rep.settleWrite('events');

    expect(await woke).toBe('change');
    // Readable at once writer by writer: the writer settles on its own position, not on p2 following.
    expect(reader.events.multi.getWriterPosition('p1')).toBeGreaterThanOrEqual(pos);
    expect(settled).toMatchObject({ p1: pos });
    await until(() => bus.log.some((l) => l.cmd.name === 'RDATA'));
    const broadcast = bus.log.filter((l) => l.to === '*' && l.cmd.name === 'POSITION' && l.cmd.stream === 'events');
    expect(broadcast).toEqual([]); // the idle persister told p1 alone
    const rows = bus.log.filter((l) => l.cmd.name === 'RDATA');
    expect(rows).toHaveLength(1);
    expect((rows[0]!.cmd as any).row.positions).toHaveProperty('p2');
    // p2 tells p1 alone that it followed (a trailing POSITION on p1's channel)...
    await until(() => bus.log.some((l) => l.to === 'p1' && l.cmd.name === 'POSITION' && (l.cmd as any).instance === 'p2'));
    // ...while p1 sends p2 nothing but its row, which carries its position.
    await new Promise((r) => setTimeout(r, 100));
    expect(bus.log.some((l) => l.cmd.name === 'POSITION' && (l.cmd as any).instance === 'p1')).toBe(false);
  });

  it('writes on both persisters at once do not wait on each other for long', async () => {
    const bus = new FakeBus({ async: true });
    const p1 = await proc(bus, 'p1');
    const p2 = await proc(bus, 'p2');
    const reader = await proc(bus, 'reader');
    await until(() => reader.events.getCurrent() === p1.events.getCurrent() && p1.events.getCurrent() === p2.events.getCurrent());
    const t0 = Date.now();
    const [a, b] = await Promise.all([p1.events.withNext(async (id) => id), p2.events.withNext(async (id) => id)]);
    p1.notifier.notify({ stream: 'events', position: a, rooms: ['!a:x'] });
    p2.notifier.notify({ stream: 'events', position: b, rooms: ['!b:x'] });
    await Promise.all([p1.rep.settleWrite('events'), p2.rep.settleWrite('events')]);
    await until(() => reader.events.getCurrent() >= Math.max(a, b));
    expect(Date.now() - t0).toBeLessThan(1000); // no fallback timer was needed
  });
});
