/**
 * SyncStore.stateAfterEvents (state groups and their full state in one
 * statement) against stateGroupsOf + stateOfGroups, on both engines, and the
 * /sync StateCache over it.
 */
import { expect, it } from 'vitest';
import { StateCache } from '../../src/services/sync/state-cache.js';
import { SyncStore } from '../../src/storage/sync/sync-store.js';
import { describeEngines } from './engines.js';

describeEngines('sync state after events', (db) => {
  const room = '!r:test';
  const k = (type: string, stateKey: string) => `${type}\u0000${stateKey}`;

  it('resolves groups and delta chains like the two separate reads', async () => {
    const d = db();
    // 1: snapshot {create, alice join}; 2: delta on 1 (alice leaves, name); 3: delta on 2 (bob joins); 4: another snapshot.
    const groups: Array<[number, number | null]> = [
      [1, null],
      [2, 1],
      [3, 2],
      [4, null],
    ];
    for (const [id, prev] of groups) {
      await d.execute('INSERT INTO state_groups (id, room_id, event_id, prev_state_group, delta_depth) VALUES (?, ?, ?, ?, ?)', [id, room, `$g${id}`, prev, 0]);
    }
    const rows: Array<[number, string, string, string]> = [
      [1, 'm.room.create', '', '$create'],
      [1, 'm.room.member', '@alice:test', '$alice1'],
      [2, 'm.room.member', '@alice:test', '$alice2'],
      [2, 'm.room.name', '', '$name'],
      [3, 'm.room.member', '@bob:test', '$bob'],
      [4, 'm.room.create', '', '$create'],
    ];
    for (const [g, type, stateKey, eventId] of rows) {
      await d.execute('INSERT INTO state_groups_state (state_group, room_id, type, state_key, event_id) VALUES (?, ?, ?, ?, ?)', [g, room, type, stateKey, eventId]);
    }
    const evGroups: Array<[string, number]> = [
      ['$e1', 1],
      ['$e2', 2],
      ['$e3', 3],
      ['$e3b', 3],
      ['$e4', 4],
    ];
    let pos = 0;
    for (const [e, g] of evGroups) {
      pos++;
      await d.execute(
        `INSERT INTO events (stream_ordering, event_id, room_id, type, sender, depth, topological_ordering, origin_server_ts, json, received_ts, state_group)
         VALUES (?, ?, ?, 'm.room.message', '@alice:test', ?, ?, 0, '{}', 0, ?)`,
        [pos, e, room, pos, pos, g],
      );
    }

    const store = new SyncStore(d);
    const ids = ['$e1', '$e2', '$e3', '$e3b', '$e4', '$unknown'];
    const { groups: got, states } = await store.stateAfterEvents(ids);
    expect(Object.fromEntries(got)).toEqual({ $e1: 1, $e2: 2, $e3: 3, $e3b: 3, $e4: 4 });
    const before = await store.stateOfGroups(await store.stateGroupsOf(ids).then((m) => [...m.values()]));
    expect(new Map([...states].map(([g, m]) => [g, Object.fromEntries(m)]))).toEqual(new Map([...before].map(([g, m]) => [g, Object.fromEntries(m)])));
    expect(Object.fromEntries(states.get(3)!)).toEqual({
      [k('m.room.create', '')]: '$create',
      [k('m.room.member', '@alice:test')]: '$alice2',
      [k('m.room.name', '')]: '$name',
      [k('m.room.member', '@bob:test')]: '$bob',
    });

    // The cache: the first call reads, the second is answered from memory, unknown events are asked again.
    let reads = 0;
    const counting = {
      stateAfterEvents: (e: string[]) => {
        reads++;
        return store.stateAfterEvents(e);
      },
      stateOfGroups: (g: number[]) => {
        reads++;
        return store.stateOfGroups(g);
      },
    };
    const cache = new StateCache(counting);
    const first = await cache.statesAfter(ids);
    expect(reads).toBe(1);
    expect(first.has('$unknown')).toBe(false);
    expect(first.get('$e3')).toBe(first.get('$e3b'));
    const second = await cache.statesAfter(['$e1', '$e3']);
    expect(reads).toBe(1);
    expect(second.get('$e1')).toBe(first.get('$e1'));
    await cache.statesAfter(['$unknown']);
    expect(reads).toBe(2);

    // Bounded by state entries: groups pushed out are read again by group (their events' groups are kept).
    const small = new StateCache(counting, { maxEvents: 100, maxStateEntries: 16 });
    reads = 0;
    await small.statesAfter(['$e3', '$e4']); // 4 + 1 entries
    await small.statesAfter(['$e2']); // 3 entries (group 2): 8 in all
    expect(reads).toBe(2);
    const tiny = new StateCache(counting, { maxEvents: 100, maxStateEntries: 4 });
    reads = 0;
    await tiny.statesAfter(['$e3', '$e1']); // group 3 (4 entries) is larger than a quarter of the bound: not kept
    const again = await tiny.statesAfter(['$e3']);
    expect(reads).toBe(2);
    expect(Object.fromEntries(again.get('$e3')!)).toEqual(Object.fromEntries(states.get(3)!));
  });
});
