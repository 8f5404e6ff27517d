/**
 * The multi-writer events stream replicated between two event persisters
 * and a reader (real PostgreSQL sequence, fake Redis bus): the reader
 * exposes the minimum; an idle persister follows the busy one and announces
 * it (POSITION), so the reader's long-poll wakes; catch-up from
 * stream_positions when the bus is down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkersPgDatabase } from '../../helpers/workers-pg.js';
import { Notifier } from '../../../src/streams/notifier.js';
import { eventsPositionFor } from '../../../src/streams/tokens.js';
import { MultiWriterEventsStream } from '../../../src/workers/events-stream.js';
import { StreamReplicator } from '../../../src/workers/stream-replication.js';
import { FakeBus } from './fake-bus.js';

const WRITERS = ['ep1', 'ep2'];

describe('events stream with two persisters', () => {
  let pg: WorkersPgDatabase;
  const open = () => pg.open();
  beforeAll(async () => {
    pg = await WorkersPgDatabase.create('myelin_evrep', 'ev-test');
  });
  afterAll(async () => {
    await pg?.close();
  });

  async function proc(bus: FakeBus, me: string) {
    const db = open();
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
      persistPosition: async () => {},
      pollConnectedMs: 1e9,
      pollDisconnectedMs: 100,
    });
    await rep.start();
    return { events, notifier, rep };
  }

  it('a reader exposes an event once its persister has passed it, and its long-poll wakes', async () => {
    const bus = new FakeBus({ targeted: false });
    const ep1 = await proc(bus, 'ep1');
    const ep2 = await proc(bus, 'ep2');
    const reader = await proc(bus, 'reader');
    const since = reader.notifier.currentToken();
    const woke = reader.notifier.waitForChange('@u:x', ['!r:x'], since, 5000);
    const [pos] = await ep1.events.allocateManyAsync(1);
    ep1.events.finish(pos!);
    ep1.notifier.notify({ stream: 'events', position: pos!, rooms: ['!r:x'] });
    expect(await woke).toBe('change');
    // Readable at once: the reader's token covers ep1's row writer by writer.
    expect(reader.events.multi.getWriterPosition('ep1')).toBeGreaterThanOrEqual(pos!);
    expect(eventsPositionFor(reader.notifier.currentToken().events, 'ep1')).toBeGreaterThanOrEqual(pos!);
    // ep2 was idle: it follows ep1 (told directly).
    for (let i = 0; i < 100 && (ep2.events.multi.getWriterPosition('ep2') ?? 0) < pos!; i++) await new Promise((r) => setTimeout(r, 10));
    expect(ep2.events.multi.getWriterPosition('ep2')).toBeGreaterThanOrEqual(pos!);
    for (const p of [ep1, ep2, reader]) p.rep.stop();
  });

  it('an event in flight on one persister holds the minimum back', async () => {
    const bus = new FakeBus({ targeted: false });
    const ep1 = await proc(bus, 'ep1');
    const ep2 = await proc(bus, 'ep2');
    const reader = await proc(bus, 'reader');
    const [slow] = await ep2.events.allocateManyAsync(1); // in flight on ep2
    const [fast] = await ep1.events.allocateManyAsync(1);
    ep1.events.finish(fast!);
    ep1.notifier.notify({ stream: 'events', position: fast!, rooms: ['!r:x'] });
    await new Promise((r) => setTimeout(r, 30));
    expect(reader.events.getCurrent()).toBeLessThan(slow!);
    ep2.events.finish(slow!);
    ep2.notifier.notify({ stream: 'events', position: slow!, rooms: ['!s:x'] });
    // ep2's row says `slow`; that it followed ep1 past it comes a moment later (a trailing POSITION).
    for (let i = 0; i < 100 && reader.events.getCurrent() < Math.max(slow!, fast!); i++) await new Promise((r) => setTimeout(r, 10));
    expect(reader.events.getCurrent()).toBeGreaterThanOrEqual(Math.max(slow!, fast!));
    for (const p of [ep1, ep2, reader]) p.rep.stop();
  });

  it('with the bus down, positions arrive from stream_positions', async () => {
    const bus = new FakeBus({ targeted: false });
    const ep1 = await proc(bus, 'ep1');
    const ep2 = await proc(bus, 'ep2');
    const reader = await proc(bus, 'reader');
    bus.up = false;
    for (const t of bus.transports) t.emit('disconnected');
    const since = reader.notifier.currentToken();
    const woke = reader.notifier.waitForChange('@u:x', [], since, 10_000);
    const [pos] = await ep1.events.allocateManyAsync(1);
    ep1.events.finish(pos!);
    ep1.notifier.notify({ stream: 'events', position: pos!, rooms: ['!r:x'] });
    expect(await woke).toBe('change');
    expect(reader.events.getCurrent()).toBeGreaterThanOrEqual(pos!);
    for (const p of [ep1, ep2, reader]) p.rep.stop();
  });
});
