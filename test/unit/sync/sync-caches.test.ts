/** The /sync caches: membership cache, window of recent events, position memo, key counts. */
import { describe, expect, it } from 'vitest';
import { KeyCountCache } from '../../../src/services/e2ee/key-count-cache.js';
import { MembershipCache, selectRooms, type MembershipReads } from '../../../src/services/sync/membership-cache.js';
import { PositionMemo, RecentEvents, type RecentEventRow } from '../../../src/services/sync/recent-events.js';
import type { MembershipAt } from '../../../src/storage/sync/sync-store.js';

/** A fake database: membership events by position; current = latest per room. */
class FakeMemberships implements MembershipReads {
  events: Array<{ pos: number; roomId: string; userId: string; membership: string }> = [];
  reads = 0;
  probes = 0;
  /** Resolves reads only when released (to interleave invalidations). */
  gate: Promise<void> | undefined;

  add(pos: number, roomId: string, userId: string, membership: string): void {
    this.events.push({ pos, roomId, userId, membership });
  }

  async currentMemberships(userId: string): Promise<MembershipAt[]> {
    this.reads++;
    const snapshot = this.rows(userId);
    if (this.gate) await this.gate;
    return snapshot;
  }

  private rows(userId: string): MembershipAt[] {
    const latest = new Map<string, MembershipAt>();
    for (const e of this.events) {
      if (e.userId === userId) latest.set(e.roomId, { roomId: e.roomId, membership: e.membership, eventId: `$${e.pos}`, streamOrdering: e.pos });
    }
    return [...latest.values()];
  }

  async membershipChangedAfter(userId: string, after: number): Promise<boolean> {
    this.probes++;
    return this.events.some((e) => e.userId === userId && e.pos > after);
  }
}

describe('MembershipCache', () => {
  it('serves the cached rows while no membership event about the user happened', async () => {
    const db = new FakeMemberships();
    let pos = 10;
    db.add(5, '!a', '@u', 'join');
    const cache = new MembershipCache(db, () => pos);
    expect((await cache.get('@u', 10)).joined).toEqual(['!a']);
    expect(db.reads).toBe(1);
    // Same position: no probe, no read.
    await cache.get('@u', 10);
    expect(db.probes).toBe(0);
    // The stream moved (other users' events): one probe, no read.
    pos = 20;
    await cache.get('@u', 20);
    expect(db.probes).toBe(1);
    expect(db.reads).toBe(1);
  });

  it('sees a membership event even without an invalidation (the probe)', async () => {
    const db = new FakeMemberships();
    let pos = 10;
    db.add(5, '!a', '@u', 'join');
    const cache = new MembershipCache(db, () => pos);
    await cache.get('@u', 10);
    db.add(11, '!b', '@u', 'join');
    db.add(12, '!a', '@u', 'leave');
    pos = 12;
    const m = await cache.get('@u', 12);
    expect(m.joined).toEqual(['!b']);
    expect(m.maxStreamOrdering).toBe(12);
    expect(db.reads).toBe(2);
  });

  it('does not keep a read that an invalidation overtook', async () => {
    const db = new FakeMemberships();
    const pos = 10;
    db.add(5, '!a', '@u', 'join');
    const cache = new MembershipCache(db, () => pos);
    let release!: () => void;
    db.gate = new Promise((r) => (release = r));
    const pending = cache.get('@u', 10);
    cache.invalidate(['@u']);
    release();
    db.gate = undefined;
    expect((await pending).joined).toEqual(['!a']); // still answers its caller
    expect(cache.size).toBe(0);
    await cache.get('@u', 10);
    expect(db.reads).toBe(2);
  });

  it('fresh() always reads; limits evict the least recently used', async () => {
    const db = new FakeMemberships();
    for (let i = 0; i < 5; i++) db.add(i + 1, '!r', `@u${i}`, 'join');
    const cache = new MembershipCache(db, () => 10, { maxUsers: 3 });
    for (let i = 0; i < 5; i++) await cache.get(`@u${i}`, 10);
    expect(cache.size).toBe(3);
    const before = db.reads;
    await cache.get('@u4', 10);
    expect(db.reads).toBe(before);
    await cache.fresh('@u4');
    expect(db.reads).toBe(before + 1);
  });

  it('re-reads entries older than maxAgeMs', async () => {
    const db = new FakeMemberships();
    db.add(1, '!r', '@u', 'join');
    let now = 0;
    const cache = new MembershipCache(db, () => 10, { maxAgeMs: 1000 }, () => now);
    await cache.get('@u', 10);
    now = 2000;
    await cache.get('@u', 10);
    expect(db.reads).toBe(2);
  });
});

describe('RecentEvents', () => {
  function fake(rows: RecentEventRow[]) {
    const calls: Array<[number, number]> = [];
    return {
      calls,
      reads: {
        async eventsInRange(from: number, to: number, limit: number) {
          calls.push([from, to]);
          return rows.filter((r) => r.pos > from && r.pos <= to).slice(0, limit);
        },
      },
    };
  }

  it('answers ranges from its window with one read per stream advance', async () => {
    const rows: RecentEventRow[] = [];
    const f = fake(rows);
    let pos = 100;
    const recent = new RecentEvents(f.reads, () => pos);
    // The window starts at the first use: older ranges fall back.
    expect(await recent.roomsWithEvents(['!a'], 90, 100)).toBeUndefined();
    rows.push({ pos: 101, roomId: '!a', member: null, outlier: false }, { pos: 102, roomId: '!b', member: '@u', outlier: false });
    pos = 102;
    const [x, y] = await Promise.all([recent.roomsWithEvents(['!a', '!c'], 100, 102), recent.roomsWithEvents(['!b'], 101, 102)]);
    expect([...x!]).toEqual(['!a']);
    expect([...y!]).toEqual(['!b']);
    expect(f.calls).toEqual([[100, 102]]);
    expect(await recent.membershipChanged('@u', 100, 102)).toBe(true);
    expect(await recent.membershipChanged('@u', 102, 102)).toBe(false);
    expect(await recent.membershipChanged('@v', 100, 102)).toBe(false);
    expect(f.calls).toHaveLength(1);
  });

  it('leaves out outliers and falls back once rows fell out of the window', async () => {
    const rows: RecentEventRow[] = [];
    const f = fake(rows);
    let pos = 0;
    const recent = new RecentEvents(f.reads, () => pos, 4);
    await recent.roomsWithEvents([], 0, 0);
    for (let i = 1; i <= 6; i++) rows.push({ pos: i, roomId: '!a', member: null, outlier: i === 6 });
    pos = 6;
    // 6 rows > 4: the window restarts after them.
    expect(await recent.roomsWithEvents(['!a'], 0, 6)).toBeUndefined();
    rows.push({ pos: 7, roomId: '!a', member: null, outlier: true });
    pos = 7;
    expect([...(await recent.roomsWithEvents(['!a'], 6, 7))!]).toEqual([]);
  });
});

describe('PositionMemo', () => {
  it('shares a read while the position stays, and forgets it when it moves', async () => {
    let pos = 1;
    let loads = 0;
    const memo = new PositionMemo<number>(() => pos);
    const load = async () => ++loads;
    expect(await memo.get('k', load)).toBe(1);
    expect(await memo.get('k', load)).toBe(1);
    pos = 2;
    expect(await memo.get('k', load)).toBe(2);
  });
});

describe('KeyCountCache', () => {
  it('caches per device and drops a device on invalidation, also during a read', async () => {
    let n = 5;
    let reads = 0;
    let gate: Promise<void> | undefined;
    const cache = new KeyCountCache(async () => {
      reads++;
      const counts = { oneTimeKeys: { signed_curve25519: n }, unusedFallbackTypes: [] };
      if (gate) await gate;
      return counts;
    });
    expect((await cache.get('@u', 'D')).oneTimeKeys.signed_curve25519).toBe(5);
    await cache.get('@u', 'D');
    expect(reads).toBe(1);
    n = 4;
    cache.invalidate('@u', 'D');
    expect((await cache.get('@u', 'D')).oneTimeKeys.signed_curve25519).toBe(4);
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    const pending = cache.get('@u', 'E');
    n = 3;
    cache.invalidate('@u', 'E');
    release();
    gate = undefined;
    await pending;
    expect((await cache.get('@u', 'E')).oneTimeKeys.signed_curve25519).toBe(3);
  });
});

describe('selectRooms', () => {
  it('keeps the rooms a filter selects, in order, and the answer per entry and frozen filter', async () => {
    const db = new FakeMemberships();
    let pos = 10;
    db.add(1, '!a', '@u', 'join');
    db.add(2, '!b', '@u', 'invite');
    db.add(3, '!c', '@u', 'join');
    db.add(4, '!d', '@u', 'join');
    const cache = new MembershipCache(db, () => pos);
    const m = await cache.get('@u', 10);
    expect(selectRooms(m, undefined)).toBe(m);
    expect(selectRooms(m, {})).toBe(m);
    const f = Object.freeze({ rooms: Object.freeze(['!d', '!b', '!a']), not_rooms: Object.freeze(['!a']) }) as { rooms: string[]; not_rooms: string[] };
    const s = selectRooms(m, f);
    expect(s.rows.map((r) => r.roomId)).toEqual(['!b', '!d']);
    expect(s.joined).toEqual(['!d']);
    expect(s.maxStreamOrdering).toBe(4);
    expect(selectRooms(m, f)).toBe(s);
    // A filter that is not frozen (inline, per request) gets the same rooms, worked out again.
    const inline = { not_rooms: ['!c'] };
    expect(selectRooms(m, inline).joined).toEqual(['!a', '!d']);
    expect(selectRooms(m, inline)).not.toBe(selectRooms(m, inline));
    // A membership change makes a new entry: the selection follows it.
    db.add(11, '!b', '@u', 'join');
    db.add(12, '!d', '@u', 'leave');
    pos = 12;
    cache.invalidate(['@u']);
    const after = await cache.get('@u', 12);
    expect(after).not.toBe(m);
    const s2 = selectRooms(after, f);
    expect(s2.joined).toEqual(['!b']);
    expect(s2.rows.map((r) => [r.roomId, r.membership])).toEqual([
      ['!b', 'join'],
      ['!d', 'leave'],
    ]);
  });
});
