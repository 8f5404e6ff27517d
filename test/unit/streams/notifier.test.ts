import { describe, expect, it } from 'vitest';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { Notifier } from '../../../src/streams/notifier.js';
import { emptyToken, type SyncToken } from '../../../src/streams/tokens.js';
import { TwoWriters } from './two-writers.js';

function tok(events: number, extra: Partial<SyncToken> = {}): SyncToken {
  return { ...emptyToken(), events: { min: events }, ...extra } as SyncToken;
}

/** Resolves to the wake reason, or 'pending' if not resolved after the microtask queue drains. */
async function state(p: Promise<string>): Promise<string> {
  return Promise.race([p, new Promise<string>((r) => setImmediate(() => r('pending')))]);
}

describe('Notifier', () => {
  it('reports the current token from the stream generators', () => {
    const events = new StreamIdGenerator(7);
    const typing = new StreamIdGenerator(3);
    const n = new Notifier({ events, typing });
    const t = n.currentToken();
    expect(t.events.min).toBe(7);
    expect(t.typing).toBe(3);
    expect(t.receipts).toBe(0);
  });

  it('wakes waiters of the room and of the user, and not others', async () => {
    const n = new Notifier({});
    const inRoom = n.waitForChange('@a:x', ['!r:x'], tok(5), 60_000);
    const target = n.waitForChange('@b:x', [], tok(5), 60_000);
    const other = n.waitForChange('@c:x', ['!other:x'], tok(5), 60_000);
    expect(n.waitingCount).toBe(3);
    n.notify({ stream: 'events', position: 6, rooms: ['!r:x'], users: ['@b:x'] });
    expect(await state(inRoom)).toBe('change');
    expect(await state(target)).toBe('change');
    expect(await state(other)).toBe('pending');
    expect(n.waitingCount).toBe(1);
    n.shutdown();
    expect(await other).toBe('shutdown');
    expect(n.waitingCount).toBe(0);
  });

  it('does not wake a waiter whose token is already past the change', async () => {
    const n = new Notifier({});
    const w = n.waitForChange('@a:x', ['!r:x'], tok(10, { typing: 4 }), 60_000);
    n.notify({ stream: 'events', position: 9, rooms: ['!r:x'] });
    n.notify({ stream: 'typing', position: 4, rooms: ['!r:x'] });
    expect(await state(w)).toBe('pending');
    n.notify({ stream: 'typing', position: 5, rooms: ['!r:x'] });
    expect(await state(w)).toBe('change');
  });

  it('times out', async () => {
    const n = new Notifier({});
    expect(await n.waitForChange('@a:x', [], tok(0), 20)).toBe('timeout');
    expect(n.waitingCount).toBe(0);
  });

  it('returns at once with timeout 0', async () => {
    const n = new Notifier({});
    expect(await state(n.waitForChange('@a:x', [], tok(0), 0))).toBe('timeout');
  });

  it('stops waiting when the request is aborted', async () => {
    const n = new Notifier({});
    const ac = new AbortController();
    const w = n.waitForChange('@a:x', ['!r:x'], tok(0), 60_000, ac.signal);
    expect(await state(w)).toBe('pending');
    ac.abort();
    expect(await w).toBe('aborted');
    expect(n.waitingCount).toBe(0);
    // a later notify finds nobody
    n.notify({ stream: 'events', position: 1, rooms: ['!r:x'] });
  });

  it('wakes everyone on process shutdown and refuses new waits', async () => {
    const ac = new AbortController();
    const n = new Notifier({}, ac.signal);
    const w = n.waitForChange('@a:x', [], tok(0), 60_000);
    ac.abort();
    expect(await w).toBe('shutdown');
    expect(await n.waitForChange('@a:x', [], tok(0), 60_000)).toBe('shutdown');
  });

  it('catches a change notified after the token was read but before waiting', async () => {
    const n = new Notifier({});
    n.notify({ stream: 'to_device', position: 3, users: ['@a:x'] });
    n.notify({ stream: 'events', position: 8, rooms: ['!elsewhere:x'] });
    // token read at to_device=2: the change at 3 was missed -> immediate wake
    expect(await state(n.waitForChange('@a:x', ['!r:x'], tok(8, { to_device: 2 }), 60_000))).toBe('change');
    // token already covers it -> waits
    const w = n.waitForChange('@a:x', ['!r:x'], tok(8, { to_device: 3 }), 60_000);
    expect(await state(w)).toBe('pending');
    n.shutdown();
  });

  it('a waiter older than the changes it forgot is woken at once; a recent one waits', async () => {
    const n = new Notifier({});
    // Far more changes than the log keeps, none about the waiters' room.
    for (let p = 1; p <= 5000; p++) n.notify({ stream: 'events', position: p, rooms: ['!busy:x'] });
    expect(await state(n.waitForChange('@a:x', ['!quiet:x'], tok(10), 60_000))).toBe('change');
    const recent = n.waitForChange('@a:x', ['!quiet:x'], tok(4990), 60_000);
    expect(await state(recent)).toBe('pending');
    // A change of the waiter's own room among the remembered ones is seen.
    n.notify({ stream: 'events', position: 5001, rooms: ['!quiet:x'] });
    expect(await state(recent)).toBe('change');
    expect(await state(n.waitForChange('@b:x', ['!other:x', '!quiet:x'], tok(5000), 60_000))).toBe('change');
    n.shutdown();
  });

  it('a user woken by a membership change of a room they were not watching', async () => {
    const n = new Notifier({});
    const w = n.waitForChange('@new:x', ['!old:x'], tok(1), 60_000);
    n.notify({ stream: 'events', position: 2, rooms: ['!joined:x'], users: ['@new:x'] });
    expect(await state(w)).toBe('change');
  });

  it('one notify wakes many waiters of a room (fan-out)', async () => {
    const n = new Notifier({});
    const ws = Array.from({ length: 50 }, (_, i) => n.waitForChange(`@u${i}:x`, ['!big:x'], tok(1), 60_000));
    n.notify({ stream: 'events', position: 2, rooms: ['!big:x'] });
    expect(await Promise.all(ws)).toEqual(new Array(50).fill('change'));
    expect(n.waitingCount).toBe(0);
  });

  it('tells observers whether a change was made here or by another process', () => {
    const n = new Notifier({});
    const seen: Array<[number, boolean]> = [];
    n.observers.push((c, local) => seen.push([c.position, local]));
    n.notify({ stream: 'events', position: 1, rooms: ['!r:x'] });
    n.applyReplicated({ stream: 'events', position: 2, rooms: ['!r:x'] });
    expect(seen).toEqual([
      [1, true],
      [2, false],
    ]);
  });
});

describe('Notifier with several events writers', () => {
  const at = (min: number, writers: Record<string, number>) => tok(0, { events: { min, writers } });

  it("sees a writer's change ahead of its part of the token behind a newer change the token covers", async () => {
    const n = new Notifier({});
    n.notify({ stream: 'events', position: 3, rooms: ['!r:x'], instance: 'p1' });
    n.notify({ stream: 'events', position: 8, rooms: ['!r:x'], instance: 'p1' });
    n.notify({ stream: 'events', position: 9, rooms: ['!other:x'], instance: 'p2' });
    // p2's change at 9 is covered; p1's at 8 is above p1's part (6): missed.
    expect(await state(n.waitForChange('@a:x', ['!r:x'], at(5, { p1: 6, p2: 9 }), 60_000))).toBe('change');
    // Every part past its writer's changes (p1's at 3 is below the minimum): waits.
    const w = n.waitForChange('@a:x', ['!r:x'], at(5, { p1: 8, p2: 9 }), 60_000);
    expect(await state(w)).toBe('pending');
    n.notify({ stream: 'events', position: 10, rooms: ['!r:x'], instance: 'p2' });
    expect(await state(w)).toBe('change');
    n.shutdown();
  });
});

describe('Notifier following several events writers (replicated rows)', () => {
  it("delivers a row once its writer's own position covers it, whatever the minimum; holds it otherwise", async () => {
    const events = new TwoWriters(0);
    const n = new Notifier({ events });
    const w = n.waitForChange('@a:x', ['!r:x'], tok(0), 60_000);
    events.set('p1', 5);
    // p1's row at 5: readable (p1 is at 5) although the minimum is 0.
    n.applyReplicated({ stream: 'events', position: 5, rooms: ['!r:x'], instance: 'p1' });
    expect(await state(w)).toBe('change');
    // p2's row at 7 arrives before p2's position: held until p2 reaches it.
    const w2 = n.waitForChange('@a:x', ['!r:x'], tok(0, { events: { min: 0, writers: { p1: 5 } } }), 60_000);
    n.applyReplicated({ stream: 'events', position: 7, rooms: ['!r:x'], instance: 'p2' });
    expect(await state(w2)).toBe('pending');
    events.set('p2', 7);
    expect(await state(w2)).toBe('change');
    n.shutdown();
  });

  it('remembers rows that arrive while nobody waits: a later wait from an older token returns at once', async () => {
    const events = new TwoWriters(0);
    const n = new Notifier({ events });
    expect(n.waitingCount).toBe(0);
    events.set('p1', 3);
    n.applyReplicated({ stream: 'events', position: 3, rooms: ['!r:x'], instance: 'p1' });
    // A held row released while nobody waits is remembered too.
    n.applyReplicated({ stream: 'events', position: 4, users: ['@b:x'], instance: 'p2' });
    events.set('p2', 4);
    expect(await state(n.waitForChange('@a:x', ['!r:x'], tok(0), 60_000))).toBe('change');
    expect(await state(n.waitForChange('@b:x', [], tok(3, { events: { min: 3 } }), 60_000))).toBe('change');
    const w = n.waitForChange('@a:x', ['!r:x'], tok(4), 60_000);
    expect(await state(w)).toBe('pending');
    n.shutdown();
  });
});

describe('Notifier with out-of-order commits', () => {
  it('holds a change until the stream position reaches it', async () => {
    const events = new StreamIdGenerator(0);
    const n = new Notifier({ events });
    const [p1, p2] = events.allocateMany(2) as [number, number];
    const w = n.waitForChange('@a:x', ['!r:x'], tok(0), 60_000);
    events.finish(p2); // the later write commits first: current stays 0
    n.notify({ stream: 'events', position: p2, rooms: ['!r:x'] });
    expect(await state(w)).toBe('pending');
    events.finish(p1); // now both are readable
    expect(await state(w)).toBe('change');
  });
});
