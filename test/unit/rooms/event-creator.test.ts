import { beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/matrix/canonical-json.js';
import { signAndHashEvent } from '../../../src/matrix/event-signing.js';
import { getRoomVersion } from '../../../src/matrix/room-versions.js';
import { generateSigningKey, verifyJsonSignature } from '../../../src/matrix/signing.js';
import { redactEvent } from '../../../src/matrix/redaction.js';
import { stateKey, type RoomEvent } from '../../../src/matrix/types.js';
import { EventCreator } from '../../../src/services/rooms/event-creator.js';
import { ClientEventSerializer } from '../../../src/services/rooms/client-events.js';
import { migrate } from '../../../src/storage/migrate.js';
import { roomsMigrations } from '../../../src/storage/migrations/rooms.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';

const SERVER = 'unit.test';
const alice = `@alice:${SERVER}`;
const bob = `@bob:${SERVER}`;
const key = generateSigningKey('u1');

describe('EventCreator', () => {
  let db: SqliteDb;
  let store: SqlRoomStore;
  let creator: EventCreator;
  let group = 0;
  let n = 0;

  beforeEach(async () => {
    db = new SqliteDb(':memory:');
    await migrate(db, roomsMigrations);
    store = new SqlRoomStore(db);
    group = 0;
    creator = new EventCreator({
      store,
      serverName: SERVER,
      signingKey: key,
      stream: new StreamIdGenerator(0),
      notifier: { notify: () => {} },
      nextStateGroup: () => ++group,
    });
  });

  async function room(version = '10'): Promise<string> {
    const roomId = `!u${++n}:${SERVER}`;
    const create = (type: string, sk: string, content: Record<string, unknown>, sender = alice) =>
      creator.create({ roomId, type, stateKey: sk, sender, content, ...(type === 'm.room.create' ? { roomVersion: version } : {}) });
    await Promise.all([
      create('m.room.create', '', { creator: alice, room_version: version }),
      create('m.room.member', alice, { membership: 'join' }),
      create('m.room.power_levels', '', { users: { [alice]: 100 } }),
      create('m.room.join_rules', '', { join_rule: 'public' }),
    ]);
    return roomId;
  }

  it('builds signed, hashed events with auth events, prev events and depth', async () => {
    const roomId = await room();
    const msg = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'x' } });
    const ev = msg.event;
    expect(ev.depth).toBe(5);
    expect(ev.hashes?.sha256).toBeTruthy();
    const rv = getRoomVersion('10')!;
    const { event_id: _id, ...pdu } = ev;
    expect(verifyJsonSignature(redactEvent(pdu, rv), SERVER, key.keyId, key.publicKey)).toBe(true);
    // recomputing the id from the PDU gives the same id
    const { signatures: _s, hashes: _h, ...unsignedPdu } = pdu;
    expect(signAndHashEvent(unsignedPdu, rv, SERVER, key).eventId).toBe(msg.eventId);
    const state = (await creator.getRoomState(roomId))!.state;
    expect(new Set(ev.auth_events)).toEqual(
      new Set([state.get(stateKey('m.room.create', ''))!.event_id, state.get(stateKey('m.room.power_levels', ''))!.event_id, state.get(stateKey('m.room.member', alice))!.event_id]),
    );
  });

  it('stores the text signing assembled: the canonical JSON of the event with its id (the general encoder else)', async () => {
    const roomId = await room('11');
    const old = await room('5');
    const sent = [
      await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'ünï "q" \u{1F600}', msgtype: 'm.text' } }),
      await creator.create({ roomId, type: 'm.room.name', stateKey: '', sender: alice, content: { name: 'N' } }),
      await creator.create({ roomId: old, type: 'm.room.message', sender: alice, content: { body: 'float', n: 0.5 } }),
    ];
    for (const c of sent) {
      const row = await db.queryOne<{ json: string }>('SELECT json FROM events WHERE event_id = ?', [c.eventId]);
      expect(JSON.parse(row!.json)).toEqual(c.event);
      expect((await store.getEvent(c.eventId))!.event).toEqual(c.event);
    }
    const first = await db.queryOne<{ json: string }>('SELECT json FROM events WHERE event_id = ?', [sent[0]!.eventId]);
    expect(first!.json).toBe(canonicalJson(sent[0]!.event));
  });

  it('rejects oversize events with M_TOO_LARGE and non-canonical JSON by room version', async () => {
    const roomId = await room();
    await expect(creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'x'.repeat(66_000) } })).rejects.toMatchObject({ status: 413, errcode: 'M_TOO_LARGE' });
    // just under the limit is fine
    await expect(creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'x'.repeat(64_000) } })).resolves.toBeTruthy();
    await expect(creator.create({ roomId, type: 'm.room.message', sender: alice, content: { n: 0.5 } })).rejects.toMatchObject({ errcode: 'M_BAD_JSON' });
    const old = await room('5');
    await expect(creator.create({ roomId: old, type: 'm.room.message', sender: alice, content: { n: 0.5 } })).resolves.toBeTruthy();
  });

  it('refuses events for unknown rooms and auth failures without touching state', async () => {
    await expect(creator.create({ roomId: `!none:${SERVER}`, type: 'm.room.message', sender: alice, content: {} })).rejects.toMatchObject({ status: 403 });
    const roomId = await room();
    const before = (await creator.getRoomState(roomId))!;
    const extremity = before.extremities[0]!.event_id;
    await expect(creator.create({ roomId, type: 'm.room.topic', stateKey: '', sender: bob, content: { topic: 'x' } })).rejects.toMatchObject({ status: 403 });
    expect((await creator.getRoomState(roomId))!.extremities[0]!.event_id).toBe(extremity);
    expect(await store.getForwardExtremities(roomId)).toEqual([extremity]);
  });

  it('resolves the state of several forward extremities', async () => {
    const roomId = await room();
    const rv = getRoomVersion('10')!;
    const base = (await creator.getRoomState(roomId))!;
    const fork = base.extremities[0]!;
    const a = await creator.create({ roomId, type: 'm.room.topic', stateKey: '', sender: alice, content: { topic: 'A' } });
    // A concurrent branch from the same parent, as if from another server.
    const state = base.state;
    const pdu = {
      room_id: roomId,
      sender: alice,
      type: 'com.example.branch',
      state_key: '',
      content: { b: true },
      origin_server_ts: Date.now(),
      depth: fork.depth + 1,
      prev_events: [fork.event_id],
      auth_events: [stateKey('m.room.create', ''), stateKey('m.room.power_levels', ''), stateKey('m.room.member', alice)].map((k) => state.get(k)!.event_id),
    };
    const { pdu: signed, eventId } = signAndHashEvent(pdu, rv, SERVER, key);
    const b = { ...signed, event_id: eventId } as RoomEvent;
    const forkGroup = (await store.getStateGroups([fork.event_id])).get(fork.event_id)!;
    const g = ++group;
    await store.persistEvents({
      roomId,
      forwardExtremities: [a.eventId, b.event_id],
      events: [{ event: b, streamOrdering: 10_000, stateGroup: g, newStateGroup: { id: g, prevGroup: forkGroup, deltaDepth: 1, entries: new Map([[stateKey('com.example.branch', ''), b.event_id]]) } }],
    });
    creator.invalidate(roomId);
    const msg = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'merge' } });
    expect(new Set(msg.event.prev_events)).toEqual(new Set([a.eventId, b.event_id]));
    expect(msg.event.depth).toBe(Math.max(a.event.depth, b.depth) + 1);
    const g2 = (await store.getStateGroups([msg.eventId])).get(msg.eventId)!;
    const resolved = await store.getStateIdsForGroup(g2);
    expect(resolved.get(stateKey('m.room.topic', ''))).toBe(a.eventId);
    expect(resolved.get(stateKey('com.example.branch', ''))).toBe(b.event_id);
    // the current state table follows the resolution
    expect(await store.getCurrentStateIds(roomId)).toEqual(resolved);
    expect(await store.getForwardExtremities(roomId)).toEqual([msg.eventId]);
  });

  it('serialises events for clients per batch', async () => {
    const roomId = await room();
    const m = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'hi' }, txn: { deviceId: 'D1', scope: 's', txnId: 'tx' } });
    const r = await creator.create({ roomId, type: 'm.room.redaction', sender: alice, content: { reason: 'r' }, redacts: m.eventId });
    const ser = new ClientEventSerializer(store);
    const stored = await store.getEvents([m.eventId, r.eventId]);
    const [redacted, redaction] = await ser.serialize([stored.get(m.eventId)!, stored.get(r.eventId)!], { userId: alice, deviceId: 'D1' });
    expect(redacted!.content).toEqual({});
    expect(redacted!.unsigned!.redacted_because.event_id).toBe(r.eventId);
    expect(redacted!.unsigned!.transaction_id).toBeUndefined();
    expect(redaction!.redacts).toBe(m.eventId);
    expect((redaction as any).signatures).toBeUndefined();
    const top = await creator.create({ roomId, type: 'm.room.message', sender: alice, content: { body: 'mine' }, txn: { deviceId: 'D1', scope: 's', txnId: 't2' } });
    const [mine] = await ser.serialize([(await store.getEvent(top.eventId))!], { userId: alice, deviceId: 'D1' });
    const [other] = await ser.serialize([(await store.getEvent(top.eventId))!], { userId: alice, deviceId: 'D2' });
    expect(mine!.unsigned!.transaction_id).toBe('t2');
    expect(other!.unsigned!.transaction_id).toBeUndefined();
  });

  it('batches concurrent sends into few transactions and keeps the chain', async () => {
    const roomId = await room();
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => creator.create({ roomId, type: 'm.room.message', sender: alice, content: { i } })));
    const depths = results.map((r) => r.event.depth);
    expect(new Set(depths).size).toBe(300);
    const positions = results.map((r) => r.streamOrdering);
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);
  });
});
