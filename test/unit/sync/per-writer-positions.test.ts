/**
 * Readers with several event persisters (issue 6): an events row of writer
 * W is covered by a position iff stream_ordering <= the position's part for
 * W (its minimum when W is not named). The position algebra, the SQL range
 * (run on a real database), the window of recent events and the
 * membership cache all follow it.
 */
import { describe, expect, it } from 'vitest';
import { MembershipCache, type MembershipReads } from '../../../src/services/sync/membership-cache.js';
import { Notifier } from '../../../src/streams/notifier.js';
import { TwoWriters } from '../streams/two-writers.js';
import { RecentEvents, type RecentEventRow } from '../../../src/services/sync/recent-events.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { eventsRangeSql } from '../../../src/storage/sync/sync-store.js';
import type { MembershipAt } from '../../../src/storage/sync/sync-store.js';
import {
  eventsClamp,
  eventsCovers,
  eventsJoin,
  eventsMeet,
  eventsRowIn,
  emptyToken,
  hasWriterParts,
  type EventsPosition,
} from '../../../src/streams/tokens.js';

describe('events position algebra', () => {
  const a: EventsPosition = { min: 10, writers: { p1: 15, p2: 12 } };
  const b: EventsPosition = { min: 11, writers: { p1: 13, p3: 20 } };

  it('meet and join work writer by writer (unnamed writers at the minimum)', () => {
    expect(eventsMeet(a, b)).toEqual({ min: 10, writers: { p1: 13, p2: 11 } });
    expect(eventsJoin(a, b)).toEqual({ min: 11, writers: { p1: 15, p2: 12, p3: 20 } });
    expect(eventsCovers(eventsJoin(a, b), a) && eventsCovers(eventsJoin(a, b), b)).toBe(true);
    expect(eventsCovers(a, eventsMeet(a, b)) && eventsCovers(b, eventsMeet(a, b))).toBe(true);
    expect(eventsMeet({ min: 5 }, { min: 7 })).toEqual({ min: 5 });
  });

  it('clamps at a row and says which rows a range holds', () => {
    expect(eventsClamp(a, 13)).toEqual({ min: 10, writers: { p1: 13, p2: 12 } });
    expect(eventsClamp(a, 9)).toEqual({ min: 9 });
    expect(eventsRowIn({ min: 10 }, a, 'p1', 15)).toBe(true);
    expect(eventsRowIn({ min: 10 }, a, 'p2', 13)).toBe(false); // p2 has not finished 13
    expect(eventsRowIn({ min: 10 }, a, 'other', 11)).toBe(false); // unnamed: the minimum
    expect(eventsRowIn({ min: 10, writers: { p1: 14 } }, a, 'p1', 14)).toBe(false); // already covered by `from`
    expect(hasWriterParts({ min: 3, writers: { p1: 3 } })).toBe(false);
    expect(hasWriterParts(a)).toBe(true);
  });
});

describe('eventsRangeSql', () => {
  async function db() {
    const d = new SqliteDb(':memory:');
    await d.execute('CREATE TABLE ev (so INTEGER, inst TEXT)');
    const rows: Array<[number, string]> = [];
    for (let so = 1; so <= 30; so++) rows.push([so, so % 3 === 0 ? 'p1' : so % 3 === 1 ? 'p2' : 'p3']);
    for (const [so, inst] of rows) await d.execute('INSERT INTO ev (so, inst) VALUES (?, ?)', [so, inst]);
    return { d, rows };
  }

  it('selects exactly the rows in (from, to] writer by writer', async () => {
    const { d, rows } = await db();
    const cases: Array<[EventsPosition | number, EventsPosition | number]> = [
      [5, 20],
      [{ min: 5, writers: { p1: 12 } }, { min: 18, writers: { p1: 27, p2: 22 } }],
      [{ min: 0 }, { min: 10, writers: { p3: 29 } }],
      [{ min: 10, writers: { p2: 25 } }, { min: 12, writers: { p2: 19 } }], // p2 already beyond: nothing of p2
    ];
    for (const [from, to] of cases) {
      const params: unknown[] = [];
      const sql = eventsRangeSql(from, to, params, 'so', 'inst');
      const got = (await d.query(`SELECT so FROM ev WHERE ${sql} ORDER BY so`, params)).map((r) => Number(r.so));
      const f = typeof from === 'number' ? { min: from } : from;
      const t = typeof to === 'number' ? { min: to } : to;
      const want = rows.filter(([so, inst]) => eventsRowIn(f, t, inst, so)).map(([so]) => so);
      expect(got, JSON.stringify([from, to])).toEqual(want);
    }
    // A single writer's positions: the plain range, no per-writer condition.
    const params: unknown[] = [];
    expect(eventsRangeSql(3, { min: 9, writers: { p1: 9 } }, params, 'so', 'inst')).toBe('so > ? AND so <= ?');
    expect(params).toEqual([3, 9]);
  });
});

describe('RecentEvents with several writers', () => {
  it('holds every row its position covers, merging a late writer row below rows already held', async () => {
    const all: RecentEventRow[] = [];
    let pos: EventsPosition = { min: 100 };
    const calls: Array<[unknown, unknown]> = [];
    const reads = {
      async eventsInRange(from: number | EventsPosition, to: number | EventsPosition, limit: number) {
        calls.push([from, to]);
        const f = typeof from === 'number' ? { min: from } : from;
        const t = typeof to === 'number' ? { min: to } : to;
        return all.filter((r) => eventsRowIn(f, t, r.instance!, r.pos)).sort((x, y) => x.pos - y.pos).slice(0, limit);
      },
    };
    const recent = new RecentEvents(reads, () => pos);
    expect(await recent.roomsWithEvents(['!a'], 100, 100)).toEqual(new Set());
    // p2 wrote 102 (room !b); p1 still has 101 in flight (room !a): p1 at 100, p2 at 102.
    all.push({ pos: 102, roomId: '!b', member: '@u', outlier: false, instance: 'p2' });
    pos = { min: 100, writers: { p2: 102 } };
    expect(await recent.roomsWithEvents(['!a', '!b'], { min: 100 }, pos)).toEqual(new Set(['!b']));
    expect(await recent.membershipChanged('@u', 100, pos)).toBe(true);
    // p1's row commits: readers see it once p1's position covers it.
    all.push({ pos: 101, roomId: '!a', member: null, outlier: false, instance: 'p1' });
    const before = pos;
    pos = { min: 102 };
    expect(await recent.roomsWithEvents(['!a', '!b'], before, pos)).toEqual(new Set(['!a']));
    expect(await recent.roomsWithEvents(['!a', '!b'], { min: 100 }, pos)).toEqual(new Set(['!a', '!b']));
    expect(calls.at(-1)).toEqual([{ min: 100, writers: { p2: 102 } }, 102]);
    // A position beyond the current one (made elsewhere) is not answered.
    expect(await recent.roomsWithEvents(['!a'], { min: 102 }, { min: 102, writers: { p1: 110 } })).toBeUndefined();
  });
});

describe('RecentEvents.newestCovered', () => {
  it('gives per room the newest row a position covers above its minimum, writer by writer', async () => {
    const all: RecentEventRow[] = [
      { pos: 101, roomId: '!a', member: null, outlier: false, instance: 'p1' },
      { pos: 102, roomId: '!b', member: null, outlier: false, instance: 'p2' },
      { pos: 103, roomId: '!a', member: null, outlier: false, instance: 'p1' },
      { pos: 104, roomId: '!b', member: null, outlier: false, instance: 'p2' },
    ];
    let pos: EventsPosition = { min: 100 };
    const reads = {
      async eventsInRange(from: number | EventsPosition, to: number | EventsPosition, limit: number) {
        const f = typeof from === 'number' ? { min: from } : from;
        const t = typeof to === 'number' ? { min: to } : to;
        return all.filter((r) => eventsRowIn(f, t, r.instance!, r.pos)).sort((x, y) => x.pos - y.pos).slice(0, limit);
      },
    };
    const recent = new RecentEvents(reads, () => pos);
    expect(await recent.newestCovered(['!a', '!b'], { min: 100 })).toEqual(new Map());
    // p1 at 103, p2 at 102 (104 not finished): !a's newest covered is 103, !b's 102.
    pos = { min: 101, writers: { p1: 103, p2: 102 } };
    expect(await recent.newestCovered(['!a', '!b'], pos)).toEqual(new Map([['!a', 103], ['!b', 102]]));
    expect(await recent.newestCovered(['!c'], pos)).toEqual(new Map());
    // Rows at or below the minimum are not named.
    pos = { min: 102, writers: { p1: 103 } };
    expect(await recent.newestCovered(['!a', '!b'], pos)).toEqual(new Map([['!a', 103]]));
    // A position beyond the current one (made elsewhere) is not answered.
    expect(await recent.newestCovered(['!a'], { min: 101, writers: { p2: 104 } })).toBeUndefined();
  });
});

describe('MembershipCache with several writers', () => {
  it('never trusts a writer part beyond the minimum for later responses', async () => {
    const events: Array<{ pos: number; roomId: string; membership: string }> = [];
    let current: MembershipAt[] = [];
    let probes = 0;
    const reads: MembershipReads = {
      async currentMemberships() {
        return current;
      },
      async membershipChangedAfter(_u, after) {
        probes++;
        return events.some((e) => e.pos > after);
      },
    };
    let min = 10;
    const cache = new MembershipCache(reads, () => min);
    expect((await cache.get('@u', { min: 10 })).joined).toEqual([]);
    // A response at m10~p2.15: probed (nothing), but the entry stays good only up to 10.
    expect((await cache.get('@u', { min: 10, writers: { p2: 15 } })).joined).toEqual([]);
    expect(probes).toBe(1);
    // p1 (behind at 10) now commits a join at 12; a later response covering it must see it.
    events.push({ pos: 12, roomId: '!r', membership: 'join' });
    current = [{ roomId: '!r', membership: 'join', eventId: '$12', streamOrdering: 12 }];
    min = 15;
    expect((await cache.get('@u', { min: 15 })).joined).toEqual(['!r']);
  });
});

describe('Notifier with several events writers', () => {
  it('wakes a long-poll once the own writer of the change covers it, whatever the other writer does', async () => {
    const events = new TwoWriters(10);
    const n = new Notifier({ events });
    const since = { ...emptyToken(), events: events.getPosition() };
    expect(n.currentToken().events).toEqual({ min: 10 });
    let woke: string | undefined;
    void n.waitForChange('@u', ['!r'], since, 10_000).then((w) => (woke = w));
    // A change of p1 at 12 while p1 is still at 11 (its 11 in flight): held.
    events.set('p1', 11);
    n.applyReplicated({ stream: 'events', position: 12, instance: 'p1', rooms: ['!r'] });
    await new Promise((r) => setTimeout(r, 20));
    expect(woke).toBeUndefined();
    // p1 reaches 12; p2 stays at 10 (paused): the long-poll wakes, and the token covers p1's row.
    events.set('p1', 12);
    await new Promise((r) => setTimeout(r, 20));
    expect(woke).toBe('change');
    expect(n.currentToken().events).toEqual({ min: 10, writers: { p1: 12 } });
    n.shutdown();
  });
});
