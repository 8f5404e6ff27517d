import { expect, it } from 'vitest';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { stateKey, type RoomEvent } from '../../../src/matrix/types.js';
import { EventCreator } from '../../../src/services/rooms/event-creator.js';
import { txnScope } from '../../../src/services/rooms/room-service.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { SyncStore } from '../../../src/storage/sync/sync-store.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { countingQueries, describeEngines } from './engines.js';

const SERVER = 'store.test';
const alice = `@alice:${SERVER}`;
const bob = `@bob:${SERVER}`;

describeEngines('rooms store', (db) => {
  let store: SqlRoomStore;
  let creator: EventCreator;
  let stream: StreamIdGenerator;
  let group = 0;
  const notified: number[] = [];
  let roomN = 0;

  const setup = async () => {
    store = new SqlRoomStore(db());
    stream = await StreamIdGenerator.fromTables(db(), [{ table: 'events', column: 'stream_ordering' }]);
    group = await store.maxStateGroupId();
    creator = new EventCreator({
      store,
      serverName: SERVER,
      signingKey: generateSigningKey('t1'),
      stream,
      notifier: { notify: (c) => notified.push(c.position) },
      nextStateGroup: () => ++group,
    });
  };

  async function newRoom(version = '10'): Promise<string> {
    if (!store) await setup();
    const roomId = `!r${++roomN}x:${SERVER}`;
    await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: alice, content: { creator: alice, room_version: version }, roomVersion: version });
    await creator.create({ roomId, type: 'm.room.member', stateKey: alice, sender: alice, content: { membership: 'join', displayname: 'Alice' } });
    await creator.create({
      roomId, type: 'm.room.power_levels', stateKey: '', sender: alice,
      content: { users: { [alice]: 100 }, users_default: 0, events_default: 0, state_default: 50, ban: 50, kick: 50, redact: 50, invite: 0 },
    });
    await creator.create({ roomId, type: 'm.room.join_rules', stateKey: '', sender: alice, content: { join_rule: 'public' } });
    return roomId;
  }

  it('persists events with edges, extremities and current state', async () => {
    const roomId = await newRoom();
    const msg = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { msgtype: 'm.text', body: 'hi' } });
    const got = await store.getEvent(msg.eventId);
    expect(got?.event.content).toEqual({ msgtype: 'm.text', body: 'hi' });
    expect(got?.streamOrdering).toBe(msg.streamOrdering);
    expect(got?.topologicalOrdering).toBe(5);
    expect(await store.getForwardExtremities(roomId)).toEqual([msg.eventId]);
    const room = await store.getRoom(roomId);
    expect(room).toMatchObject({ roomVersion: '10', creator: alice, isPublic: false });
    const current = await store.getCurrentStateIds(roomId);
    expect([...current.keys()].sort()).toEqual(
      [stateKey('m.room.create', ''), stateKey('m.room.member', alice), stateKey('m.room.power_levels', ''), stateKey('m.room.join_rules', '')].sort(),
    );
    // edges: prev_event of the message is the join rules event
    const jr = current.get(stateKey('m.room.join_rules', ''))!;
    expect(got!.event.prev_events).toEqual([jr]);
    expect(notified).toContain(msg.streamOrdering);
    // batch read
    const many = await store.getEvents([msg.eventId, jr, '$missing']);
    expect([...many.keys()].sort()).toEqual([jr, msg.eventId].sort());
  });

  it('dedupes state groups and resolves delta chains', async () => {
    const roomId = await newRoom();
    const m1 = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'a' } });
    const m2 = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'b' } });
    const topic = await creator.create({ roomId, type: 'm.room.topic', stateKey: '', sender: alice, content: { topic: 't' } });
    const m3 = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'c' } });
    const groups = await store.getStateGroups([m1.eventId, m2.eventId, topic.eventId, m3.eventId]);
    expect(groups.get(m1.eventId)).toBe(groups.get(m2.eventId));
    expect(groups.get(topic.eventId)).not.toBe(groups.get(m2.eventId));
    expect(groups.get(m3.eventId)).toBe(groups.get(topic.eventId));
    const info = await store.getStateGroupInfo(groups.get(topic.eventId)!);
    expect(info?.prevGroup).toBe(groups.get(m2.eventId));
    const atTopic = await store.getStateIdsForGroup(groups.get(topic.eventId)!);
    const atM1 = await store.getStateIdsForGroup(groups.get(m1.eventId)!);
    expect(atTopic.get(stateKey('m.room.topic', ''))).toBe(topic.eventId);
    expect(atM1.has(stateKey('m.room.topic', ''))).toBe(false);
    expect(atTopic).toEqual(await store.getCurrentStateIds(roomId));
  });

  it('writes a snapshot after many deltas and keeps the chain correct', async () => {
    const roomId = await newRoom();
    let last = '';
    for (let i = 0; i < 60; i++) {
      last = (await creator.create({ roomId, type: 'm.room.topic', stateKey: '', sender: alice, content: { topic: `t${i}` } })).eventId;
    }
    const g = (await store.getStateGroups([last])).get(last)!;
    const info = await store.getStateGroupInfo(g);
    expect(info!.deltaDepth).toBeLessThan(50);
    const ids = await store.getStateIdsForGroup(g);
    expect(ids.get(stateKey('m.room.topic', ''))).toBe(last);
    expect(ids.size).toBe(5);
  });

  it('keeps memberships and current membership in step', async () => {
    const roomId = await newRoom();
    await creator.create({ roomId, type: 'm.room.member', stateKey: bob, sender: bob, content: { membership: 'join', displayname: 'Bob' } });
    expect((await store.getMembership(roomId, bob))?.membership).toBe('join');
    expect((await store.getMembers(roomId, { membership: ['join'] })).map((m) => m.userId)).toEqual([alice, bob].sort());
    await creator.create({ roomId, type: 'm.room.member', stateKey: bob, sender: bob, content: { membership: 'leave' } });
    expect((await store.getMembership(roomId, bob))?.membership).toBe('leave');
    expect((await store.getRoomsForUser(bob, ['join'])).map((r) => r.roomId)).not.toContain(roomId);
    expect((await store.getRoomsForUser(bob, ['leave'])).map((r) => r.roomId)).toContain(roomId);
    const hist = await store.membershipHistory(roomId, bob);
    expect(hist.map((h) => h.membership)).toEqual(['join', 'leave']);
    const counts = await store.joinedCounts([roomId]);
    expect(counts.get(roomId)).toBe(1);
    await store.forgetRoom(bob, roomId);
    expect(await store.isForgotten(bob, roomId)).toBe(true);
    expect((await store.getRoomsForUser(bob, ['leave'])).map((r) => r.roomId)).not.toContain(roomId);
    // prev_content is kept for state events
    const cur = await store.getCurrentStateEvent(roomId, 'm.room.member', bob);
    expect(cur?.unsignedExtra?.prev_content).toMatchObject({ membership: 'join' });
  });

  it('rejects events the auth rules forbid, and writes nothing for them', async () => {
    const roomId = await newRoom();
    const before = await store.maxStreamOrdering();
    await expect(creator.create({ roomId, type: 'm.room.message', sender: bob, content: { body: 'x' } })).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    expect(await store.maxStreamOrdering()).toBe(before);
  });

  it('rolls back a batch that fails half way', async () => {
    const roomId = await newRoom();
    const msg = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'a' } });
    const stored = (await store.getEvent(msg.eventId))!;
    const fresh: RoomEvent = { ...stored.event, event_id: '$fresh:x', state_key: 'k', type: 'm.test' };
    const stateBefore = await store.getCurrentStateIds(roomId);
    await expect(
      store.persistEvents({
        roomId,
        forwardExtremities: ['$fresh:x'],
        events: [
          { event: fresh, streamOrdering: 999_001, stateGroup: 999_001, newStateGroup: { id: 999_001, prevGroup: null, deltaDepth: 0, entries: new Map([[stateKey('m.test', 'k'), '$fresh:x']]) } },
          // duplicate event id: the events insert fails
          { event: stored.event, streamOrdering: 999_002, stateGroup: 1 },
        ],
      }),
    ).rejects.toThrow();
    expect(await store.getEvent('$fresh:x')).toBeUndefined();
    expect(await store.getStateIdsForGroup(999_001)).toEqual(new Map());
    expect(await store.getCurrentStateIds(roomId)).toEqual(stateBefore);
    expect(await store.getForwardExtremities(roomId)).toEqual([msg.eventId]);
  });

  it('paginates topologically and by stream, with filters', async () => {
    const roomId = await newRoom();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push((await creator.create({ roomId, type: i % 2 ? 'm.room.message' : 'm.other', sender: alice, content: i === 3 ? { body: 'u', url: 'mxc://a/b' } : { body: String(i) } })).eventId);
    }
    const back = await store.paginate(roomId, { from: null, dir: 'b', limit: 3 });
    expect(back.map((e) => e.event.event_id)).toEqual([ids[9], ids[8], ids[7]]);
    const last = back[2]!;
    const next = await store.paginate(roomId, { from: { topo: last.topologicalOrdering, stream: last.streamOrdering - 1 }, dir: 'b', limit: 2 });
    expect(next.map((e) => e.event.event_id)).toEqual([ids[6], ids[5]]);
    const fwd = await store.paginate(roomId, { from: { topo: last.topologicalOrdering, stream: last.streamOrdering }, dir: 'f', limit: 5 });
    expect(fwd.map((e) => e.event.event_id)).toEqual([ids[8], ids[9]]);
    const onlyMsgs = await store.paginate(roomId, { from: null, dir: 'b', limit: 100, filter: { types: ['m.room.*'], notTypes: ['m.room.member', 'm.room.create', 'm.room.power_levels', 'm.room.join_rules'] } });
    expect(onlyMsgs.map((e) => e.event.event_id)).toEqual([ids[9], ids[7], ids[5], ids[3], ids[1]]);
    const urls = await store.paginate(roomId, { from: null, dir: 'b', limit: 100, filter: { containsUrl: true } });
    expect(urls.map((e) => e.event.event_id)).toEqual([ids[3]]);
    const s0 = (await store.getEvent(ids[0]!))!.streamOrdering;
    const s9 = (await store.getEvent(ids[9]!))!.streamOrdering;
    const byStream = await store.getRoomEventsByStream(roomId, { from: s0, to: s9, limit: 3, dir: 'b' });
    expect(byStream.map((e) => e.event.event_id)).toEqual([ids[9], ids[8], ids[7]]);
  });

  it('reads a page with the viewer\'s transaction ids and which events have relations (paginateForViewer)', async () => {
    const roomId = await newRoom();
    const a = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'a' }, txn: { deviceId: 'DEV', scope: 's', txnId: 'ta' } });
    const b = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'b' }, txn: { deviceId: 'OTHER', scope: 's', txnId: 'tb' } });
    const c = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'c' } });
    // Relations of a (a reply in a thread) and b (an edit); an annotation of c is not one that bundles.
    await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 't', 'm.relates_to': { rel_type: 'm.thread', event_id: a.eventId } } });
    await creator.create({
      roomId, type: 'm.room.message', sender: alice,
      content: { body: '* b', 'm.new_content': { body: 'b2' }, 'm.relates_to': { rel_type: 'm.replace', event_id: b.eventId } },
    });
    await creator.create({ roomId, type: 'm.reaction', sender: alice, content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: c.eventId, key: 'x' } } });
    const from = await store.paginate(roomId, { from: null, dir: 'b', limit: 4 });
    const last = from[3]!;
    const opts = { from: { topo: last.topologicalOrdering, stream: last.streamOrdering - 1 }, dir: 'b' as const, limit: 3 };
    const plain = await store.paginate(roomId, opts);
    const page = await store.paginateForViewer(roomId, opts, { userId: alice, deviceId: 'DEV' });
    expect(page.events).toEqual(plain);
    expect(last.event.event_id).toBe(c.eventId);
    expect(plain.map((e) => e.event.event_id).slice(0, 2)).toEqual([b.eventId, a.eventId]);
    expect([...page.txnIds]).toEqual([[a.eventId, 'ta']]);
    expect([...page.related].sort()).toEqual([a.eventId, b.eventId].sort());
    // Another device sees its own transaction id; no device, none.
    expect([...(await store.paginateForViewer(roomId, opts, { userId: alice, deviceId: 'OTHER' })).txnIds]).toEqual([[b.eventId, 'tb']]);
    expect((await store.paginateForViewer(roomId, opts, { userId: alice, deviceId: null })).txnIds.size).toBe(0);
    expect((await store.paginateForViewer(roomId, opts, { userId: bob, deviceId: 'DEV' })).txnIds.size).toBe(0);
    // A stream position as a bound (a sync token's), resolved by the statement as topoPositionAtStream does.
    for (const stream of [a.streamOrdering, c.streamOrdering - 1, 0]) {
      const at = (await store.topoPositionAtStream(roomId, stream)) ?? { topo: 0, stream };
      for (const dir of ['b', 'f'] as const) {
        const viaStream = await store.paginateForViewer(roomId, { from: { roomId, stream }, dir, limit: 5 }, { userId: alice, deviceId: 'DEV' });
        expect(viaStream).toEqual(await store.paginateForViewer(roomId, { from: at, dir, limit: 5 }, { userId: alice, deviceId: 'DEV' }));
      }
      const to = await store.readAccessAndPage(roomId, { from: { topo: 0, stream: 0 }, to: { roomId, stream }, dir: 'f', limit: 50 }, { userId: alice });
      expect(to.page.events).toEqual(await store.paginate(roomId, { from: { topo: 0, stream: 0 }, to: at, dir: 'f', limit: 50 }));
    }
    // Forwards, with a filter, like paginate.
    const fwdOpts = { from: null, dir: 'f' as const, limit: 100, filter: { types: ['m.reaction'] } };
    expect((await store.paginateForViewer(roomId, fwdOpts, { userId: alice })).events).toEqual(await store.paginate(roomId, fwdOpts));
  });

  it('reads access and the visibility timelines in one call (readAccess), as the separate reads give them', async () => {
    const roomId = await newRoom();
    const none = await store.readAccess(roomId, bob);
    expect(none).toEqual({ memberships: [], visibilityHistory: [] });
    await creator.create({ roomId, type: 'm.room.history_visibility', stateKey: '', sender: alice, content: { history_visibility: 'joined' } });
    await creator.create({ roomId, type: 'm.room.member', stateKey: bob, sender: bob, content: { membership: 'join' } });
    await creator.create({ roomId, type: 'm.room.history_visibility', stateKey: '', sender: alice, content: { history_visibility: 'world_readable' } });
    await creator.create({ roomId, type: 'm.room.member', stateKey: bob, sender: bob, content: { membership: 'leave' } });
    const got = await store.readAccess(roomId, bob);
    expect(got.member).toEqual(await store.getMembership(roomId, bob));
    expect(got.member?.membership).toBe('leave');
    expect(got.historyVisibility).toEqual({ history_visibility: 'world_readable' });
    expect(got.memberships).toEqual(await store.membershipHistory(roomId, bob));
    expect(got.memberships.map((m) => m.membership)).toEqual(['join', 'leave']);
    expect(got.visibilityHistory).toEqual(await store.stateHistory(roomId, 'm.room.history_visibility', ''));
    expect(got.visibilityHistory.map((h) => h.content.history_visibility)).toEqual(['joined', 'world_readable']);
    // Both reads in one statement give the same, in either direction, with or without a device.
    for (let i = 0; i < 5; i++) {
      await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: String(i) }, txn: { deviceId: 'D', scope: 's', txnId: `x${roomN}-${i}` } });
    }
    const newest = (await store.paginate(roomId, { from: null, dir: 'b', limit: 1 }))[0]!;
    const top = { topo: newest.topologicalOrdering, stream: newest.streamOrdering };
    for (const [opts, viewer] of [
      [{ from: top, dir: 'b' as const, limit: 4 }, { userId: alice, deviceId: 'D' }],
      [{ from: { topo: 0, stream: 0 }, to: top, dir: 'f' as const, limit: 100 }, { userId: bob }],
      [{ from: top, dir: 'b' as const, limit: 0 }, { userId: alice, deviceId: 'D' }],
    ] as const) {
      const both = await store.readAccessAndPage(roomId, opts, viewer);
      expect(both.access).toEqual(await store.readAccess(roomId, viewer.userId));
      expect(both.page).toEqual(await store.paginateForViewer(roomId, opts, viewer));
    }
    const b4 = await store.readAccessAndPage(roomId, { from: top, dir: 'b', limit: 4 }, { userId: alice, deviceId: 'D' });
    expect(b4.page.events.map((e) => e.event.content.body)).toEqual(['4', '3', '2', '1']);
    expect(b4.page.txnIds.size).toBe(4);
    expect(b4.access.member?.membership).toBe('join');
  });

  it('stores txn ids, aliases and the public flag', async () => {
    const roomId = await newRoom();
    const scope = txnScope('send', roomId, 'm.room.message');
    const msg = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'a' }, txn: { deviceId: 'DEV', scope, txnId: 'tx1' } });
    expect(await store.getTxnEvent(alice, 'DEV', scope, 'tx1')).toBe(msg.eventId);
    expect(await store.getTxnEvent(alice, 'OTHER', scope, 'tx1')).toBeUndefined();
    // The same txn id on another path (scope) is not the same transaction.
    expect(await store.getTxnEvent(alice, 'DEV', txnScope('send', roomId, 'm.room.other'), 'tx1')).toBeUndefined();
    expect(await store.getTxnEvent(alice, 'DEV', txnScope('redact', roomId, msg.eventId), 'tx1')).toBeUndefined();
    expect((await store.getTxnIds([msg.eventId], alice, 'DEV')).get(msg.eventId)).toBe('tx1');
    // The same txn id in another scope is a new row, with its own event.
    const other = await creator.create({
      roomId, type: 'm.room.other', sender: alice, content: {}, txn: { deviceId: 'DEV', scope: txnScope('send', roomId, 'm.room.other'), txnId: 'tx1' },
    });
    expect(await store.getTxnEvent(alice, 'DEV', txnScope('send', roomId, 'm.room.other'), 'tx1')).toBe(other.eventId);
    expect(await store.getTxnEvent(alice, 'DEV', scope, 'tx1')).toBe(msg.eventId);
    // Lookups asked together: one statement, each answered as alone.
    const { db: counting, statements } = countingQueries(db());
    const batched = new SqlRoomStore(counting);
    const asked: Array<[string, string, string, string]> = [
      [alice, 'DEV', scope, 'tx1'],
      [alice, 'DEV', scope, 'nope'],
      [alice, 'OTHER', scope, 'tx1'],
      [bob, 'DEV', scope, 'tx1'],
      [alice, 'DEV', scope, 'tx1'],
      [alice, 'DEV', txnScope('send', roomId, 'm.room.other'), 'tx1'],
      [alice, 'DEV', txnScope('send', '!elsewhere:x', 'm.room.message'), 'tx1'],
    ];
    expect(await Promise.all(asked.map(([u, d, s, t]) => batched.getTxnEvent(u, d, s, t)))).toEqual([
      msg.eventId, undefined, undefined, undefined, msg.eventId, other.eventId, undefined,
    ]);
    expect(statements.length).toBe(1);
    // A NUL fails its own lookup only (PostgreSQL refuses it), not the others asked with it.
    const withNul = await Promise.allSettled([batched.getTxnEvent(alice, 'DEV', scope, 'tx1'), batched.getTxnEvent(alice, 'DEV', scope, 'a\u0000b')]);
    expect(withNul[0]).toEqual({ status: 'fulfilled', value: msg.eventId });
    if (db().engine !== 'postgres') expect(withNul[1]).toEqual({ status: 'fulfilled', value: undefined });
    const alias = `#a${roomN}:${SERVER}`;
    expect(await store.createAlias(alias, roomId, alice)).toBe(true);
    expect(await store.createAlias(alias, roomId, alice)).toBe(false);
    expect(await store.getAlias(alias)).toEqual({ roomId, creator: alice });
    expect(await store.getAliasesForRoom(roomId)).toEqual([alias]);
    expect(await store.deleteAlias(alias)).toBe(true);
    expect(await store.getAlias(alias)).toBeUndefined();
    await store.setRoomPublic(roomId, true);
    const pub = await store.listPublicRooms({ offset: 0, limit: 10 });
    expect(pub.find((p) => p.roomId === roomId)?.joinedMembers).toBe(1);
  });

  it('chains concurrent sends into one room', async () => {
    const roomId = await newRoom();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: String(i) } })),
    );
    const events = await store.getEvents(results.map((r) => r.eventId));
    const sorted = [...events.values()].sort((a, b) => a.streamOrdering - b.streamOrdering);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i]!.event.prev_events).toEqual([sorted[i - 1]!.event.event_id]);
      expect(sorted[i]!.event.depth).toBe(sorted[i - 1]!.event.depth + 1);
    }
    expect(await store.getForwardExtremities(roomId)).toEqual([sorted[sorted.length - 1]!.event.event_id]);
  });

  it('writes a batch larger than one multi-row INSERT holds (events, state group rows, txn ids)', async () => {
    const roomId = await newRoom();
    const n = 250;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: `big ${i}` }, txn: { deviceId: 'DEV', scope: 's', txnId: `big${i}` } }),
      ),
    );
    const events = await store.getEvents(results.map((r) => r.eventId));
    expect(events.size).toBe(n);
    const groups = await store.getStateGroups(results.map((r) => r.eventId));
    expect(groups.size).toBe(n);
    for (const [i, r] of results.entries()) {
      expect(events.get(r.eventId)?.event.content).toEqual({ body: `big ${i}` });
      expect(await store.getTxnEvent(alice, 'DEV', 's', `big${i}`)).toBe(r.eventId);
    }
    expect(await store.getForwardExtremities(roomId)).toEqual([results[n - 1]!.eventId]);
  });

  it('reads the timelines of many rooms in one call: newest `limit` per room in its range, with a filter', async () => {
    const rooms: string[] = [];
    const sent = new Map<string, number[]>();
    const ids = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const roomId = await newRoom();
      rooms.push(roomId);
      const positions: number[] = [];
      for (let j = 0; j < 4; j++) {
        const type = j === 2 ? 'm.reaction' : 'm.room.message';
        // Two of each room's events sent by a client, from two devices.
        const txn = j === 1 ? { deviceId: 'DEV', scope: 's', txnId: `t${i}.${j}` } : j === 3 ? { deviceId: 'OTHER', scope: 's', txnId: `t${i}.${j}` } : undefined;
        const r = await creator.create({ roomId, type, sender: alice, content: { body: `${i}.${j}` }, ...(txn ? { txn } : {}) });
        positions.push(r.streamOrdering);
        ids.set(`${i}.${j}`, r.eventId);
      }
      sent.set(roomId, positions);
    }
    const sync = new SyncStore(db());
    const top = Math.max(...[...sent.values()].flat());
    // Room 0 from before its messages, room 1 from after its second, room 2 an empty range.
    const p0 = sent.get(rooms[0]!)!;
    const p1 = sent.get(rooms[1]!)!;
    const p2 = sent.get(rooms[2]!)!;
    const ranges = [
      { roomId: rooms[0]!, from: p0[0]! - 1, to: top },
      { roomId: rooms[1]!, from: p1[1]!, to: top },
      { roomId: rooms[2]!, from: p2[3]!, to: top },
    ];
    const bodies = (m: Map<string, Array<{ event: RoomEvent }>>, r: string) => m.get(r)!.map((e) => e.event.content.body);
    const all = await sync.timelines(ranges, 3);
    expect(bodies(all, rooms[0]!)).toEqual(['0.1', '0.2', '0.3']);
    expect(bodies(all, rooms[1]!)).toEqual(['1.2', '1.3']);
    expect(bodies(all, rooms[2]!)).toEqual([]);
    const messages = await sync.timelines(ranges, 3, { types: ['m.room.message'] });
    expect(bodies(messages, rooms[0]!)).toEqual(['0.0', '0.1', '0.3']);
    expect(bodies(messages, rooms[1]!)).toEqual(['1.3']);
    // One room alone reads the same.
    const one = await sync.timelines([ranges[0]!], 3);
    expect(bodies(one, rooms[0]!)).toEqual(['0.1', '0.2', '0.3']);

    // Asked for, the events read that others relate to (as anyRelations says), whatever the relation's position,
    // and the device and transaction id of those a client sent (as txnIds says for that device).
    await creator.create({ roomId: rooms[0]!, type: 'm.reaction', sender: alice, content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: ids.get('0.1'), key: 'x' } } });
    await creator.create({ roomId: rooms[1]!, type: 'm.room.message', sender: alice, content: { body: 'reply', 'm.relates_to': { 'm.in_reply_to': { event_id: ids.get('1.3') } } } });
    await creator.create({ roomId: rooms[1]!, type: 'm.room.message', sender: alice, content: { body: 'edit', 'm.new_content': { body: 'x' }, 'm.relates_to': { rel_type: 'm.replace', event_id: ids.get('1.2') } } });
    for (const rs of [ranges, [ranges[0]!], [ranges[1]!]]) {
      const extras = { related: new Set<string>(), txns: new Map<string, { deviceId: string; txnId: string }>() };
      const got = await sync.timelines(rs, 3, undefined, extras);
      const read = [...got.values()].flat().map((e) => e.event.event_id);
      const { related, txns } = extras;
      expect([...related].sort()).toEqual(read.filter((id) => id === ids.get('0.1') || id === ids.get('1.2')).sort());
      expect(related.size).toBeGreaterThan(0);
      for (const id of related) expect(await sync.anyRelations([id])).toBe(true);
      expect(await sync.anyRelations(read.filter((id) => !related.has(id)))).toBe(false);
      expect(txns.size).toBeGreaterThan(0);
      for (const device of ['DEV', 'OTHER']) {
        const mine = new Map([...txns].filter(([, t]) => t.deviceId === device).map(([id, t]) => [id, t.txnId]));
        expect(mine).toEqual(await sync.txnIds(read, alice, device));
      }
      // Without extras, the same events.
      expect([...(await sync.timelines(rs, 3)).values()].flat().map((e) => e.event.event_id)).toEqual(read);
    }
  });

  it('builds v1-format events for room version 1', async () => {
    const roomId = await newRoom('1');
    const msg = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'a' } });
    expect(msg.eventId).toMatch(new RegExp(`^\\$[A-Za-z0-9]+:${SERVER.replace('.', '\\.')}$`));
    const prev = msg.event.prev_events[0] as [string, { sha256: string }];
    expect(Array.isArray(prev)).toBe(true);
    expect(prev[1].sha256).toMatch(/^[A-Za-z0-9+/]+$/);
  });
});
