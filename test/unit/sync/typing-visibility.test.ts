import { afterEach, describe, expect, it, vi } from 'vitest';
import { filterVisible } from '../../../src/services/sync/visibility.js';
import { TypingService } from '../../../src/services/typing/typing-service.js';
import type { StoredEvent } from '../../../src/storage/rooms/store.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import type { StreamChange } from '../../../src/streams/notifier-types.js';

describe('TypingService', () => {
  afterEach(() => vi.useRealTimers());

  function make() {
    const changes: StreamChange[] = [];
    const gen = new StreamIdGenerator(0);
    const t = new TypingService(gen, { notify: (c) => changes.push(c) });
    return { t, gen, changes };
  }

  it('start, refresh and stop take positions and notify the room', async () => {
    const { t, gen, changes } = make();
    await t.setTyping('!r:x', '@a:x', true, 10_000);
    expect(gen.getCurrent()).toBe(1);
    expect(changes).toEqual([{ stream: 'typing', position: 1, rooms: ['!r:x'] }]);
    await t.setTyping('!r:x', '@a:x', true, 10_000); // refresh: nothing visible changes
    expect(changes.length).toBe(1);
    expect(t.getUpdates(['!r:x', '!other:x'], 0, 1)).toEqual(new Map([['!r:x', { type: 'm.typing', content: { user_ids: ['@a:x'] } }]]));
    await t.setTyping('!r:x', '@a:x', false);
    expect(gen.getCurrent()).toBe(2);
    // an incremental sync learns the list is now empty; an initial one sees no typing
    expect(t.getUpdates(['!r:x'], 1, 2).get('!r:x')!.content.user_ids).toEqual([]);
    expect(t.getUpdates(['!r:x'], 0, 2).size).toBe(0);
    // nothing after `to`
    expect(t.getUpdates(['!r:x'], 2, 2).size).toBe(0);
    await t.setTyping('!r:x', '@a:x', false); // already stopped: no change
    expect(changes.length).toBe(2);
    t.close();
  });

  it('expires after the timeout', async () => {
    vi.useFakeTimers();
    const { t, changes } = make();
    await t.setTyping('!r:x', '@a:x', true, 5000);
    await t.setTyping('!r:x', '@b:x', true, 20_000);
    vi.advanceTimersByTime(5001);
    expect(t.typingUsers('!r:x')).toEqual(['@b:x']);
    expect(changes.length).toBe(3);
    vi.advanceTimersByTime(15_000);
    expect(t.typingUsers('!r:x')).toEqual([]);
    t.close();
  });
});

const ev = (i: number, type: string, sender: string, content: Record<string, unknown> = {}, stateKey?: string): StoredEvent =>
  ({
    event: { event_id: `$${i}`, type, sender, content, room_id: '!r:x', origin_server_ts: i, depth: i, prev_events: [], auth_events: [], ...(stateKey !== undefined ? { state_key: stateKey } : {}) },
    roomId: '!r:x',
    streamOrdering: i,
    topologicalOrdering: i,
    outlier: false,
    rejectedReason: null,
    softFailed: false,
    redactedBy: null,
    unsignedExtra: null,
  }) as StoredEvent;

describe('history visibility in sync timelines', () => {
  const me = '@me:x';
  const timeline = [
    ev(1, 'm.room.message', '@o:x', { body: 'before' }),
    ev(2, 'm.room.member', me, { membership: 'join' }, me),
    ev(3, 'm.room.message', '@o:x', { body: 'after' }),
  ];
  const ids = (xs: StoredEvent[]) => xs.map((e) => e.event.event_id);

  it('joined: only from the join on', () => {
    expect(ids(filterVisible(me, timeline, { historyVisibility: 'joined', membership: 'leave' }, true))).toEqual(['$2', '$3']);
  });
  it('shared: everything when joined later', () => {
    expect(ids(filterVisible(me, timeline, { historyVisibility: 'shared', membership: 'leave' }, true))).toEqual(['$1', '$2', '$3']);
  });
  it('invited: from the invite on', () => {
    expect(ids(filterVisible(me, timeline, { historyVisibility: 'invited', membership: 'invite' }, true))).toEqual(['$1', '$2', '$3']);
    expect(ids(filterVisible(me, timeline, { historyVisibility: 'invited', membership: 'leave' }, true))).toEqual(['$2', '$3']);
  });
  it('after leaving, later events are hidden', () => {
    const left = [ev(1, 'm.room.message', '@o:x'), ev(2, 'm.room.member', me, { membership: 'leave' }, me), ev(3, 'm.room.message', '@o:x')];
    expect(ids(filterVisible(me, left, { historyVisibility: 'joined', membership: 'join' }, false))).toEqual(['$1', '$2']);
  });
  it('world_readable: everything', () => {
    expect(ids(filterVisible(me, timeline, { historyVisibility: 'world_readable', membership: 'leave' }, false))).toEqual(['$1', '$2', '$3']);
  });
});
