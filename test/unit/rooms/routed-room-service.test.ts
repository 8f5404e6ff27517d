import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { ClientEventSerializer } from '../../../src/services/rooms/client-events.js';
import { EventCreator, type EventCreatorDeps } from '../../../src/services/rooms/event-creator.js';
import { chooseRoomId, RoomIdTakenError } from '../../../src/services/rooms/create-room.js';
import { RoutedRoomService, type RoomWriteRequest } from '../../../src/services/rooms/routed-room-service.js';
import { VisibilityChecker } from '../../../src/services/rooms/visibility.js';
import { migrate } from '../../../src/storage/migrate.js';
import { roomsMigrations } from '../../../src/storage/migrations/rooms.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import { SqliteDb } from '../../../src/storage/sqlite.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import { MatrixError } from '../../../src/util/errors.js';

/** A rooms context on an in-memory SQLite database (`shard`: the event creator's ownsRoom/onForeignRoom). */
async function roomsFixture(shard: Pick<EventCreatorDeps, 'ownsRoom' | 'onForeignRoom'> = {}) {
  const db = new SqliteDb(':memory:');
  await migrate(db, roomsMigrations);
  const store = new SqlRoomStore(db);
  let g = 0;
  const creator = new EventCreator({
    store,
    serverName: 'r.test',
    signingKey: generateSigningKey('r'),
    stream: new StreamIdGenerator(0),
    notifier: { notify() {} },
    nextStateGroup: () => ++g,
    ...shard,
  });
  const ctx = { serverName: 'r.test', store, creator, serializer: new ClientEventSerializer(store), visibility: new VisibilityChecker(store) };
  return { store, ctx };
}

describe('RoutedRoomService', () => {
  it('routes writes as plain JSON and runs them on the writer side', async () => {
    const { store, ctx } = await roomsFixture();
    const seen: RoomWriteRequest[] = [];
    // The "writer": a second service that receives the JSON as HTTP replication would deliver it.
    const writer: RoutedRoomService = new RoutedRoomService(ctx, async () => { throw new Error('writer must not route'); });
    const svc = new RoutedRoomService(ctx, async (req) => {
      const wire = JSON.parse(JSON.stringify(req)) as RoomWriteRequest;
      seen.push(wire);
      return JSON.parse(JSON.stringify(await writer.runLocal(wire)));
    });
    const actor = { userId: '@a:r.test', deviceId: 'D' };
    const { roomId } = await svc.createRoom(actor, { preset: 'public_chat' });
    expect(roomId).toMatch(/^!.+:r\.test$/);
    expect(seen[0]).toMatchObject({ op: 'createRoom' });
    // The room id is chosen by the caller: the creation runs in the new room's own events writer.
    expect(seen[0]!.roomId).toBe(roomId);
    const id = await svc.sendMessage(actor, roomId, 'm.room.message', { body: 'x' }, 't1');
    expect(seen[1]).toMatchObject({ op: 'sendMessage', roomId });
    expect((await store.getEvent(id))?.event.content).toEqual({ body: 'x' });
    await svc.join({ userId: '@b:r.test' }, roomId);
    await svc.leave({ userId: '@b:r.test' }, roomId); // reason undefined -> null on the wire -> no reason key
    const leave = await store.getCurrentStateEvent(roomId, 'm.room.member', '@b:r.test');
    expect(leave?.event.content).toEqual({ membership: 'leave' });
    await expect(svc.kick({ userId: '@b:r.test' }, roomId, '@a:r.test')).rejects.toBeInstanceOf(MatrixError);
    await expect(writer.runLocal({ op: 'nope' as any, args: [] })).rejects.toThrow(/unknown/);
  });

  it('every event of a room in its own writer: profile changes go room by room, other shards are refused', async () => {
    const foreign: string[] = [];
    // This "persister" owns the rooms whose id does not contain "x".
    const { store, ctx } = await roomsFixture({
      ownsRoom: (roomId) => !roomId.includes('x'),
      onForeignRoom: (roomId) => foreign.push(roomId),
    });
    const seen: RoomWriteRequest[] = [];
    const writer: RoutedRoomService = new RoutedRoomService(ctx, async () => {
      throw new Error('writer must not route');
    });
    const svc = new RoutedRoomService(ctx, async (req) => {
      const wire = JSON.parse(JSON.stringify(req)) as RoomWriteRequest;
      seen.push(wire);
      return JSON.parse(JSON.stringify(await writer.runLocal(wire)));
    });
    const actor = { userId: '@a:r.test', deviceId: 'D' };
    const rooms: string[] = [];
    while (rooms.length < 2) {
      try {
        rooms.push((await svc.createRoom(actor, { preset: 'public_chat' })).roomId);
      } catch (e) {
        expect(String(e)).toMatch(/another event persister/); // a room id of the other shard: refused, not written elsewhere
      }
    }
    expect(foreign.every((r) => r.includes('x'))).toBe(true);
    seen.length = 0;
    await svc.onProfileChanged('@a:r.test', { displayname: 'Alice' });
    expect(seen.map((r) => [r.op, r.roomId]).sort()).toEqual(rooms.map((r) => ['onProfileChanged', r]).sort());
    for (const r of rooms) expect((await store.getCurrentStateEvent(r, 'm.room.member', '@a:r.test'))?.event.content.displayname).toBe('Alice');
    // A room id the request does not produce is refused (v12: the create event's hash).
    await expect(
      writer.runLocal({ op: 'createRoom', roomId: '!nothash', args: [actor, { room_version: '12' }, { roomId: '!nothash', createTs: 1 }] }),
    ).rejects.toThrow(/does not match/);
  });

  it('a v12 room id drawn by two processes at once: the writer refuses the second, which draws again', async () => {
    const { store, ctx } = await roomsFixture();
    const writer: RoutedRoomService = new RoutedRoomService(ctx, async () => {
      throw new Error('writer must not route');
    });
    const actor = { userId: '@a:r.test', deviceId: 'D' };
    const req = { room_version: '12' };
    // The other process's draw: same creator, content and millisecond.
    const taken = chooseRoomId('r.test', actor, req);
    await writer.runLocal({ op: 'createRoom', roomId: taken.roomId, args: [actor, req, taken] });
    // A second create of that id, while it exists or while it is being created, is refused as taken.
    const again = writer.runLocal({ op: 'createRoom', roomId: taken.roomId, args: [actor, req, taken] });
    await expect(again).rejects.toSatisfy((e: unknown) => RoomIdTakenError.is(e) && (e as MatrixError).status === 409);
    const v12 = { ...req, name: 'same millisecond' };
    const id2 = chooseRoomId('r.test', actor, v12);
    const both = await Promise.allSettled([0, 1].map(() => writer.runLocal({ op: 'createRoom', roomId: id2.roomId, args: [actor, v12, id2] })));
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    // The caller draws again on that answer (it crosses HTTP replication as JSON).
    const seen: string[] = [];
    let first = true;
    const svc = new RoutedRoomService(ctx, async (wire) => {
      seen.push(wire.roomId!);
      if (first) {
        first = false;
        const e = new RoomIdTakenError(wire.roomId!);
        throw new MatrixError(e.status, e.errcode, e.message, JSON.parse(JSON.stringify(e.toJSON())));
      }
      return JSON.parse(JSON.stringify(await writer.runLocal(JSON.parse(JSON.stringify(wire)))));
    });
    const { roomId } = await svc.createRoom(actor, req);
    expect(seen).toHaveLength(2);
    expect(seen[0]).not.toBe(seen[1]);
    expect(roomId).toBe(seen[1]);
    expect((await store.getRoom(roomId))).toBeDefined();
  });
});
