/**
 * Room upgrades with several event persisters (issue 6): the upgrade runs in
 * any process; the new room's events are created by the new room's
 * persister and the old room's (tombstone, restriction) by the old room's,
 * each through a routed write. A refused tombstone leaves the old room as
 * it was and abandons the new room; an unanswered one keeps the new room.
 */
import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { RoomUpgradeService, type ReplacementRoom } from '../../../src/services/room-upgrade/upgrade-service.js';
import { ClientEventSerializer } from '../../../src/services/rooms/client-events.js';
import { EventCreator } from '../../../src/services/rooms/event-creator.js';
import { RoutedRoomService, type RoomWriteRequest } from '../../../src/services/rooms/routed-room-service.js';
import { VisibilityChecker } from '../../../src/services/rooms/visibility.js';
import { migrate } from '../../../src/storage/migrate.js';
import { roomsMigrations } from '../../../src/storage/migrations/rooms.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { Errors, MatrixError } from '../../../src/util/errors.js';

const wire = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

/** Two "persisters" (rooms by a hash of the id) and a "generic worker" that writes nothing itself. */
async function cluster() {
  const db = new SqliteDb(':memory:');
  await migrate(db, roomsMigrations);
  const store = new SqlRoomStore(db);
  const stream = new StreamIdGenerator(0);
  let g = 0;
  const shard = (roomId: string) => [...roomId].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 1000, 7) % 2;
  const foreign: string[] = [];
  const writerCalls: Array<{ persister: number; what: string; roomId: string }> = [];
  /** Fails the next routed request matching it, once. */
  let failNext: { match: (req: RoomWriteRequest) => boolean; error: Error } | undefined;
  const make = (owns: (roomId: string) => boolean, cacheState: boolean) => {
    const creator = new EventCreator({
      store, serverName: 'u.test', signingKey: generateSigningKey('u'), stream, notifier: { notify() {} }, nextStateGroup: () => ++g, cacheState,
      ownsRoom: owns, onForeignRoom: (roomId) => foreign.push(roomId),
    });
    return { serverName: 'u.test', store, creator, serializer: new ClientEventSerializer(store), visibility: new VisibilityChecker(store) };
  };
  const persisters = [0, 1].map((p) => {
    const ctx = make((r) => shard(r) === p, true);
    const rooms = new RoutedRoomService(ctx, async () => {
      throw new Error('a persister must not route');
    });
    const upgrades = new RoomUpgradeService({ serverName: 'u.test', creator: ctx.creator, roomStore: store, rooms });
    return { ctx, rooms, upgrades };
  });
  const reader = make(() => false, false);
  const rooms = new RoutedRoomService(reader, async (req) => {
    const p = shard(req.roomId!);
    writerCalls.push({ persister: p, what: req.op, roomId: req.roomId! });
    if (failNext?.match(req)) {
      const e = failNext.error;
      failNext = undefined;
      throw e;
    }
    return wire(await persisters[p]!.rooms.runLocal(wire(req)));
  });
  const upgrades = new RoomUpgradeService({
    serverName: 'u.test',
    creator: reader.creator,
    roomStore: store,
    rooms,
    createRoomEvents: async (req: ReplacementRoom) => {
      const p = shard(req.roomId);
      writerCalls.push({ persister: p, what: 'replacement', roomId: req.roomId });
      await persisters[p]!.upgrades.createReplacementRoom(wire(req));
    },
  });
  return { store, shard, foreign, writerCalls, rooms, upgrades, failTombstone: (error: Error) => (failNext = { match: (r) => r.op === 'sendState' && r.args[2] === 'm.room.tombstone', error }) };
}

describe('room upgrades across event persisters', () => {
  const actor = { userId: '@a:u.test', deviceId: 'D' };

  it('creates the new room on its persister and tombstones the old room on its own, whichever they are', async () => {
    const c = await cluster();
    const placements = new Set<string>();
    let room = (await c.rooms.createRoom(actor, { preset: 'public_chat', name: 'N' })).roomId;
    for (let i = 0; i < 20 && (placements.size < 3 || i < 8); i++) {
      c.writerCalls.length = 0;
      // v10 and v12 rooms in turn (a v12 room's creators, out of its power levels, keep their power in the next v10 room).
      const version = i % 2 ? '12' : '10';
      const next = await c.upgrades.upgrade(actor, room, version);
      placements.add(c.shard(room) === c.shard(next) ? 'same' : `${c.shard(room)}->${c.shard(next)}`);
      // Every write went to the room's own persister.
      for (const w of c.writerCalls) expect(w.persister).toBe(c.shard(w.roomId));
      expect(c.writerCalls[0]).toMatchObject({ what: 'replacement', roomId: next });
      expect(c.writerCalls[1]).toMatchObject({ what: 'sendState', roomId: room });
      expect((await c.store.getCurrentStateEvent(room, 'm.room.tombstone', ''))?.event.content.replacement_room).toBe(next);
      expect((await c.store.getCurrentStateEvent(room, 'm.room.power_levels', ''))?.event.content.events_default).toBe(50);
      const create = await c.store.getCurrentStateEvent(next, 'm.room.create', '');
      expect(create?.event.content.predecessor.room_id).toBe(room);
      expect((await c.store.getCurrentStateEvent(next, 'm.room.name', ''))?.event.content.name).toBe('N');
      const users = (await c.store.getCurrentStateEvent(next, 'm.room.power_levels', ''))?.event.content.users;
      if (version === '10') expect(users[actor.userId]).toBeGreaterThanOrEqual(100);
      else expect(users[actor.userId]).toBeUndefined();
      room = next;
    }
    expect(placements.has('0->1') && placements.has('1->0')).toBe(true);
    expect(c.foreign).toEqual([]);
  });

  it('a refused tombstone: the error is answered, the old room is as it was, the new room is left', async () => {
    const c = await cluster();
    const room = (await c.rooms.createRoom(actor, { preset: 'public_chat' })).roomId;
    await c.store.createAlias('#keep:u.test', room, actor.userId);
    c.failTombstone(Errors.forbidden('no longer allowed'));
    c.writerCalls.length = 0;
    await expect(c.upgrades.upgrade(actor, room, '10')).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    const next = c.writerCalls[0]!.roomId;
    expect(await c.store.getCurrentStateEvent(room, 'm.room.tombstone', '')).toBeUndefined();
    expect((await c.store.getAlias('#keep:u.test'))?.roomId).toBe(room);
    expect((await c.store.getCurrentStateEvent(room, 'm.room.power_levels', ''))?.event.content.events_default).toBe(0);
    expect((await c.store.getMembership(next, actor.userId))?.membership).toBe('leave');
    // The room can still be upgraded afterwards.
    const again = await c.upgrades.upgrade(actor, room, '10');
    expect((await c.store.getCurrentStateEvent(room, 'm.room.tombstone', ''))?.event.content.replacement_room).toBe(again);
    expect((await c.store.getAlias('#keep:u.test'))?.roomId).toBe(again);
  });

  it('an unanswered tombstone: the error is answered and the new room kept (the tombstone may still land)', async () => {
    const c = await cluster();
    const room = (await c.rooms.createRoom(actor, { preset: 'public_chat' })).roomId;
    c.failTombstone(new MatrixError(502, 'M_UNKNOWN', 'Replication failed'));
    c.writerCalls.length = 0;
    await expect(c.upgrades.upgrade(actor, room, '10')).rejects.toMatchObject({ status: 502 });
    const next = c.writerCalls[0]!.roomId;
    expect((await c.store.getMembership(next, actor.userId))?.membership).toBe('join');
    expect(await c.store.getCurrentStateEvent(room, 'm.room.tombstone', '')).toBeUndefined();
  });

  it('the replacement room endpoint takes only a room starting with its create event', async () => {
    const c = await cluster();
    const svc = new RoomUpgradeService({ serverName: 'u.test', creator: {} as EventCreator, roomStore: c.store, rooms: c.rooms });
    await expect(svc.createReplacementRoom({ roomId: '!a:u.test', events: [{ roomId: '!a:u.test', type: 'm.room.name', sender: '@a:u.test', stateKey: '', content: {} }] })).rejects.toThrow(/create event/);
    await expect(
      svc.createReplacementRoom({ roomId: '!a:u.test', events: [{ roomId: '!b:u.test', type: 'm.room.create', sender: '@a:u.test', stateKey: '', content: {} }] }),
    ).rejects.toThrow(/create event/);
  });
});
