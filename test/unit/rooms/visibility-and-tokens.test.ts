import { describe, expect, it } from 'vitest';
import type { MembershipChange, RoomStore, StoredEvent } from '../../../src/storage/rooms/store.js';
import { VisibilityChecker } from '../../../src/services/rooms/visibility.js';
import { formatTopoToken, parseFilterParam, parsePaginationToken } from '../../../src/services/rooms/pagination.js';

const ROOM = '!r:x';
const U = '@u:x';

function ev(pos: number, type = 'm.room.message', extra: Record<string, unknown> = {}): StoredEvent {
  return {
    event: { event_id: `$e${pos}`, room_id: ROOM, sender: '@a:x', type, content: {}, origin_server_ts: 0, depth: pos, prev_events: [], auth_events: [], ...extra } as any,
    roomId: ROOM,
    streamOrdering: pos,
    topologicalOrdering: pos,
    outlier: false,
    rejectedReason: null,
    softFailed: false,
    redactedBy: null,
    unsignedExtra: null,
  };
}

function fakeStore(members: Array<[number, string]>, hv: Array<[number, string]>): RoomStore {
  return {
    membershipHistory: async () =>
      members.map(([pos, membership]) => ({ streamOrdering: pos, membership, eventId: `$m${pos}`, roomId: ROOM, userId: U, sender: U }) as MembershipChange),
    stateHistory: async () => hv.map(([pos, v]) => ({ streamOrdering: pos, eventId: `$h${pos}`, content: { history_visibility: v } })),
  } as unknown as RoomStore;
}

const visibleIds = async (store: RoomStore, events: StoredEvent[], user: string | undefined = U) =>
  (await new VisibilityChecker(store).filter(user, ROOM, events)).map((e) => e.streamOrdering);

describe('history visibility', () => {
  const events = [1, 2, 3, 4, 5, 6, 7, 8].map((p) => ev(p));

  it('joined: only while joined', async () => {
    expect(await visibleIds(fakeStore([[3, 'join'], [6, 'leave']], [[0, 'joined']]), events)).toEqual([3, 4, 5]);
  });

  it('shared: everything up to the last join-period, nothing after leaving', async () => {
    expect(await visibleIds(fakeStore([[3, 'join'], [6, 'leave']], [[0, 'shared']]), events)).toEqual([1, 2, 3, 4, 5]);
    // still joined: everything
    expect(await visibleIds(fakeStore([[3, 'join']], [[0, 'shared']]), events)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('invited: from the invite on', async () => {
    expect(await visibleIds(fakeStore([[3, 'invite'], [5, 'join']], [[0, 'invited']]), events)).toEqual([3, 4, 5, 6, 7, 8]);
  });

  it('world_readable: anyone, even without a user', async () => {
    expect(await visibleIds(fakeStore([], [[0, 'world_readable']]), events, undefined)).toHaveLength(8);
    expect(await visibleIds(fakeStore([], [[0, 'shared']]), events, undefined)).toEqual([]);
  });

  it('changes of visibility apply from the next event, and users always see their own membership', async () => {
    const evs = [ev(1), ev(2, 'm.room.history_visibility', { state_key: '', content: { history_visibility: 'world_readable' } }), ev(3), ev(4, 'm.room.member', { state_key: U, content: { membership: 'leave' } })];
    expect(await visibleIds(fakeStore([], [[0, 'joined'], [2, 'world_readable']]), evs)).toEqual([2, 3, 4]);
  });
});

describe('pagination tokens and filters', () => {
  it('round-trips topological tokens and accepts sync tokens', () => {
    expect(parsePaginationToken(formatTopoToken({ topo: 12, stream: 345 }))).toEqual({ kind: 'topo', pos: { topo: 12, stream: 345 } });
    expect(parsePaginationToken('s1_77_0_0_0_0_0_0_0')).toEqual({ kind: 'stream', stream: 77, events: { min: 77 } });
    expect(() => parsePaginationToken('nope')).toThrow(/Invalid/);
    expect(() => parsePaginationToken('s9_x')).toThrow();
  });

  it('parses RoomEventFilters and rejects malformed ones', () => {
    expect(parseFilterParam(JSON.stringify({ types: ['a'], not_senders: ['@b:x'], contains_url: true, lazy_load_members: true }))).toEqual({
      types: ['a'], notSenders: ['@b:x'], containsUrl: true, lazyLoadMembers: true,
    });
    expect(() => parseFilterParam('{')).toThrow();
    expect(() => parseFilterParam(JSON.stringify({ types: 'a' }))).toThrow();
    expect(() => parseFilterParam(JSON.stringify({ contains_url: 'yes' }))).toThrow();
  });
});
