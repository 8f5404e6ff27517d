/**
 * Builds the rooms capability: the room store, the events stream position
 * generator, the event-creation path and the room services (write, read,
 * directory), and hooks profile changes to member-event updates.
 */
import { ClientEventSerializer } from '../services/rooms/client-events.js';
import type { RoomsContext } from '../services/rooms/context.js';
import { DirectoryService } from '../services/rooms/directory-service.js';
import { EventCreator } from '../services/rooms/event-creator.js';
import { RoomReadService } from '../services/rooms/room-reads.js';
import { RoutedRoomService, type RoomWriteRequest } from '../services/rooms/routed-room-service.js';
import { VisibilityChecker } from '../services/rooms/visibility.js';
import { SqlRoomStore } from '../storage/rooms/sql-store.js';
import { StreamIdGenerator } from '../streams/id-generator.js';
import { makeWriter } from '../workers/runtime.js';
import { stateGroupAllocator } from '../workers/state-groups.js';
import { streamWriters } from '../workers/role.js';
import type { Services } from './services.js';

export async function wireRooms(services: Services): Promise<void> {
  const store = new SqlRoomStore(services.db, services.instanceName);
  const stream =
    services.streams.events ?? (await StreamIdGenerator.fromTables(services.db, [{ table: 'events', column: 'stream_ordering' }]));
  services.streams.events = stream;
  let stateGroup = await store.maxStateGroupId();
  // Only an events writer keeps room state cached (it sees every write).
  const writesEvents = streamWriters(services.config).events.includes(services.workers?.role.instanceName ?? 'master');
  const creator = new EventCreator({
    store,
    serverName: services.serverName,
    signingKey: services.keys.signing,
    stream,
    // Read at call time: the sync capability installs its notifier later.
    notifier: { notify: (c) => services.notifier.notify(c) },
    nextStateGroup: stateGroupAllocator(services, () => ++stateGroup, (n) => (stateGroup = n)),
    cacheState: writesEvents,
    // live-streams: push evaluated before the commit; its rows are written in
    // the events' own transaction (read at call time: wired after us).
    batchRows: {
      prepare: async (roomId, events) => services.live?.push.prepareBatch(roomId, events.map((e) => ({ event: e.event, streamOrdering: e.streamOrdering }))),
      aborted: (roomId) => services.live?.push.batchAborted(roomId),
    },
    onPersisted: (roomId, events) => {
      for (const l of services.roomEventListeners) l(roomId, events);
    },
  });
  const serializer = new ClientEventSerializer(store);
  const ctx: RoomsContext = {
    serverName: services.serverName,
    store,
    creator,
    serializer,
    visibility: new VisibilityChecker(store),
    ...(services.profiles ? { profiles: services.profiles } : {}),
    ...(services.accounts ? { isAdmin: (u: string) => services.accounts.isAdmin(u) } : {}),
  };
  // Writes run in the room's events writer: locally here, or over HTTP replication.
  const route = makeWriter<RoomWriteRequest, unknown>(services, {
    stream: 'events',
    endpoint: 'rooms_write',
    // No room yet (createRoom, profile updates): the first events writer.
    shardKey: ((req: RoomWriteRequest) => req.roomId) as (req: RoomWriteRequest) => string,
    local: (req) => rooms.runLocal(req), // called only after `rooms` below exists
  });
  const rooms: RoutedRoomService = new RoutedRoomService(ctx, (req) => route(req));
  services.roomStore = store;
  services.eventCreator = creator;
  services.rooms = rooms;
  const rt = services.workers;
  services.roomReads = new RoomReadService(ctx, () => stream.getCurrent(), rt ? () => rt.freshPositions() : undefined);
  services.roomDirectory = new DirectoryService(ctx, rooms, services.logger);
  services.clientEvents = serializer;
  services.roomVisibility = ctx.visibility;
  services.roomEventListeners = [];
  services.profiles?.onProfileChanged.push((userId, profile) => rooms.onProfileChanged(userId, profile));
}
