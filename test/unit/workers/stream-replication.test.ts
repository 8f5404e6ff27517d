/**
 * StreamReplicator with fakes: publishing after commit (gated by the
 * writer's own position), applying rows into the reader's generator and
 * notifier, gaps, POSITION, catch-up from recorded positions, typing
 * catch-up from the writer, caches.
 */
import { describe, expect, it } from 'vitest';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { Notifier } from '../../../src/streams/notifier.js';
import { emptyToken } from '../../../src/streams/tokens.js';
import type { NotifiedStream } from '../../../src/streams/notifier-types.js';
import { CacheRegistry } from '../../../src/workers/caches.js';
import type { Command } from '../../../src/workers/commands.js';
import { StreamReplicator, type PositionRow, type TypingReplicaHooks } from '../../../src/workers/stream-replication.js';
import { FakeBus } from './fake-bus.js';

const WRITERS: Record<string, string[]> = { receipts: ['writer'], typing: ['writer'], events: ['writer'] };

function proc(bus: FakeBus, me: string, opts: { positions?: PositionRow[]; typing?: TypingReplicaHooks; start?: number } = {}) {
  const streams: Partial<Record<NotifiedStream, StreamIdGenerator>> = {
    receipts: new StreamIdGenerator(opts.start ?? 0),
    typing: new StreamIdGenerator(0),
  };
  const notifier = new Notifier(streams);
  const caches = new CacheRegistry();
  const persisted: Array<[string, string, number]> = [];
  const transport = bus.transport(me);
  const rep = new StreamReplicator({
    instanceName: me,
    writersOf: (s) => WRITERS[s] ?? ['master'],
    streams,
    notifier,
    transport,
    readPositions: async () => opts.positions ?? [],
    persistPosition: async (s, i, p) => {
      persisted.push([s, i, p]);
    },
    caches,
    typing: opts.typing,
    pollConnectedMs: 1e9,
  });
  caches.publish = (n, k) => rep.publishCacheInvalidation(n, k);
  return { streams, notifier, caches, rep, persisted, transport };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

describe('StreamReplicator', () => {
  it('publishes a committed write and wakes a long-poll on the reader', async () => {
    const bus = new FakeBus({ targeted: false });
    const w = proc(bus, 'writer');
    const r = proc(bus, 'reader');
    await w.rep.start();
    await r.rep.start();
    const since = r.notifier.currentToken();
    const woke = r.notifier.waitForChange('@u:x', ['!room:x'], since, 5000);
    const gen = w.streams.receipts!;
    await gen.withNext(async () => {});
    w.notifier.notify({ stream: 'receipts', position: 1, rooms: ['!room:x'] });
    expect(await woke).toBe('change');
    expect(r.streams.receipts!.getCurrent()).toBe(1);
    const rdata = bus.sent.find((c) => c.name === 'RDATA' && c.stream === 'receipts') as Extract<Command, { name: 'RDATA' }>;
    expect(rdata).toMatchObject({ instance: 'writer', token: 1, row: { rooms: ['!room:x'], prev: 0 } });
    expect(typeof (rdata.row as any).ts).toBe('number');
    // The writer recorded its position for catch-up.
    await tick();
    expect(w.persisted).toContainEqual(['receipts', 'writer', 1]);
  });

  it('does not wake waiters of unrelated rooms', async () => {
    const bus = new FakeBus({ targeted: false });
    const w = proc(bus, 'writer');
    const r = proc(bus, 'reader');
    await w.rep.start();
    await r.rep.start();
    const woke = r.notifier.waitForChange('@u:x', ['!other:x'], r.notifier.currentToken(), 100);
    await w.streams.receipts!.withNext(async () => {});
    w.notifier.notify({ stream: 'receipts', position: 1, rooms: ['!room:x'] });
    expect(await woke).toBe('timeout');
  });

  it('holds a row until the writer position covers it (out-of-order commits)', async () => {
    const bus = new FakeBus({ targeted: false });
    const w = proc(bus, 'writer');
    await w.rep.start();
    const gen = w.streams.receipts!;
    const a = gen.allocate(); // 1, still in flight
    const b = gen.allocate(); // 2
    gen.finish(b);
    w.notifier.notify({ stream: 'receipts', position: b, rooms: ['!r:x'] });
    expect(bus.sent.filter((c) => c.name === 'RDATA')).toHaveLength(0);
    gen.finish(a);
    w.notifier.notify({ stream: 'receipts', position: a, rooms: ['!r:x'] });
    const tokens = bus.sent.filter((c) => c.name === 'RDATA').map((c) => (c as any).token);
    expect(tokens.sort()).toEqual([1, 2]);
  });

  it('ignores rows from an instance that does not write the stream', async () => {
    const bus = new FakeBus({ targeted: false });
    const r = proc(bus, 'reader');
    await r.rep.start();
    r.rep.onCommand({ name: 'RDATA', stream: 'receipts', instance: 'impostor', token: 50, row: { prev: 0, ts: Date.now() } });
    expect(r.streams.receipts!.getCurrent()).toBe(0);
  });

  it('a gap (prev not seen) wakes every waiter of the stream', async () => {
    const bus = new FakeBus({ targeted: false });
    const r = proc(bus, 'reader');
    await r.rep.start();
    const woke = r.notifier.waitForChange('@nobody:x', [], r.notifier.currentToken(), 5000);
    // Row 7 for another room, but we never saw 1..5: someone may have missed something.
    r.rep.onCommand({ name: 'RDATA', stream: 'receipts', instance: 'writer', token: 7, row: { prev: 5, ts: Date.now(), rooms: ['!elsewhere:x'] } });
    expect(await woke).toBe('change');
    expect(r.streams.receipts!.getCurrent()).toBe(7);
  });

  it('POSITION advances without waking when nothing was missed, and wakes on a gap', async () => {
    const bus = new FakeBus({ targeted: false });
    const r = proc(bus, 'reader');
    await r.rep.start();
    const t0 = r.notifier.currentToken();
    const quiet = r.notifier.waitForChange('@u:x', [], t0, 50);
    r.rep.onCommand({ name: 'POSITION', stream: 'receipts', instance: 'writer', prev: 0, next: 3 });
    expect(await quiet).toBe('timeout');
    expect(r.streams.receipts!.getCurrent()).toBe(3);
    const t1 = r.notifier.currentToken();
    const loud = r.notifier.waitForChange('@u:x', [], t1, 5000);
    r.rep.onCommand({ name: 'POSITION', stream: 'receipts', instance: 'writer', prev: 9, next: 10 });
    expect(await loud).toBe('change');
    expect(r.streams.receipts!.getCurrent()).toBe(10);
  });

  it('catches up from recorded positions after a Redis reconnection, waking waiters', async () => {
    const bus = new FakeBus({ targeted: false });
    const positions: PositionRow[] = [];
    const r = proc(bus, 'reader', { positions });
    await r.rep.start();
    const woke = r.notifier.waitForChange('@u:x', [], r.notifier.currentToken(), 5000);
    // Rows published while Redis was away are lost; the database has the record.
    positions.push({ stream_name: 'receipts', instance_name: 'writer', stream_id: '12' });
    positions.push({ stream_name: 'receipts', instance_name: 'impostor', stream_id: '99' });
    r.transport.emit('reconnected');
    expect(await woke).toBe('change');
    expect(r.streams.receipts!.getCurrent()).toBe(12);
  });

  it('polls the database every second while Redis is away', async () => {
    const bus = new FakeBus({ targeted: false });
    const positions: PositionRow[] = [];
    const r = proc(bus, 'reader', { positions });
    await r.rep.start();
    r.transport.emit('disconnected');
    positions.push({ stream_name: 'receipts', instance_name: 'writer', stream_id: 4 });
    const t = Date.now();
    while (r.streams.receipts!.getCurrent() < 4 && Date.now() - t < 3000) await tick();
    expect(r.streams.receipts!.getCurrent()).toBe(4);
    r.rep.stop();
  });

  it('typing rows carry the room list; a reader that fell behind asks the writer', async () => {
    const bus = new FakeBus({ targeted: false });
    const lists = new Map<string, string[]>();
    const applied: Array<[string, string[], number]> = [];
    let fetched = -1;
    const readerTyping: TypingReplicaHooks = {
      usersTyping: () => [],
      apply: (room, users, pos) => applied.push([room, users, pos]),
      roomsWithTyping: () => ['!stale:x'],
      fetch: async (from) => {
        fetched = from;
        return { position: 20, startedAt: 15, rows: [{ roomId: '!r:x', userIds: ['@b:x'], position: 20 }] };
      },
    };
    const w = proc(bus, 'writer', { typing: { ...readerTyping, usersTyping: (r) => lists.get(r) ?? [] } });
    const r = proc(bus, 'reader', { typing: readerTyping });
    await w.rep.start();
    await r.rep.start(); // the start catch-up asks the writer: it restarted (startedAt 15 > 0)
    await tick();
    expect(fetched).toBe(0);
    expect(applied).toContainEqual(['!stale:x', [], 20]);
    expect(r.streams.typing!.getCurrent()).toBe(20);
    applied.length = 0;
    lists.set('!r:x', ['@a:x']);
    const gen = w.streams.typing!;
    gen.advanceTo(20);
    const p = gen.allocate();
    gen.finish(p);
    w.notifier.notify({ stream: 'typing', position: p, rooms: ['!r:x'] });
    expect(applied).toEqual([['!r:x', ['@a:x'], 21]]);
    expect(r.streams.typing!.getCurrent()).toBe(21);
  });

  it('cache invalidations reach the other processes, and a gap clears every cache', async () => {
    const bus = new FakeBus({ targeted: false });
    const a = proc(bus, 'writer');
    const b = proc(bus, 'reader');
    await a.rep.start();
    await b.rep.start();
    const dropped: string[][] = [];
    let cleared = 0;
    b.caches.register('access_tokens', (k) => dropped.push(k), () => cleared++);
    a.caches.register('access_tokens', () => {});
    a.caches.invalidate('access_tokens', ['h1', 'h2']);
    expect(dropped).toEqual([['h1', 'h2']]);
    b.rep.onCommand({ name: 'RDATA', stream: 'receipts', instance: 'writer', token: 5, row: { prev: 3, ts: Date.now() } });
    expect(cleared).toBe(1);
  });

  it('a token from a process ahead is waited for (catchUpTo) once replication delivers', async () => {
    const bus = new FakeBus({ targeted: false });
    const r = proc(bus, 'reader');
    await r.rep.start();
    r.notifier.onBehind = () => {};
    const ahead = emptyToken();
    ahead.receipts = 2;
    const { encodeSyncToken } = await import('../../../src/streams/tokens.js');
    const waiting = r.notifier.catchUpTo(encodeSyncToken(ahead), 2000);
    setTimeout(() => r.rep.onCommand({ name: 'POSITION', stream: 'receipts', instance: 'writer', prev: 0, next: 2 }), 30);
    await waiting;
    expect(r.streams.receipts!.getCurrent()).toBe(2);
  });

  it('while a token from a process ahead is not covered, the positions are read again (quietly) every BEHIND_AGAIN_MS', async () => {
    const bus = new FakeBus({ targeted: false });
    const r = proc(bus, 'reader');
    await r.rep.start();
    let caughtUp = 0;
    let asked = 0;
    r.notifier.onBehind = () => void caughtUp++;
    r.notifier.onStillBehind = () => void asked++;
    const ahead = emptyToken();
    ahead.receipts = 2;
    const { encodeSyncToken } = await import('../../../src/streams/tokens.js');
    const t0 = Date.now();
    await r.notifier.catchUpTo(encodeSyncToken(ahead), 700);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(650);
    expect(caughtUp).toBe(1); // one catch-up (it wakes every waiter of what moved)
    expect(asked).toBeGreaterThanOrEqual(2); // then quiet reads, about every 250 ms
  });
});
