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
import type { ExtraRows } from '../storage/rooms/store.js';
import { MultiWriterEventsStream } from '../workers/events-stream.js';
import { makeWriter } from '../workers/runtime.js';
import { stateGroupAllocator } from '../workers/state-groups.js';
import { roomShardFor, streamWriters } from '../workers/role.js';
import { eventsPositionFor, eventsUpperBound, type EventsPosition } from '../streams/tokens.js';
import type { Services } from './services.js';

export async function wireRooms(services: Services): Promise<void> {
  const store = new SqlRoomStore(services.db, services.instanceName);
  const stream =
    services.streams.events ?? (await StreamIdGenerator.fromTables(services.db, [{ table: 'events', column: 'stream_ordering' }]));
  services.streams.events = stream;
  let stateGroup = await store.maxStateGroupId();
  // Only an events writer keeps room state cached (it sees every write).
  const eventWriters = streamWriters(services.config).events;
  const me = services.workers?.role.instanceName ?? 'master';
  const writesEvents = eventWriters.includes(me);
  // Worker mode with several event persisters, this process one of them.
  const onePersisterOfSeveral = !!services.workers && writesEvents && eventWriters.length > 1;
  const positions = writesEvents && stream instanceof MultiWriterEventsStream ? recordPositionsWithEvents(stream) : undefined;
  const creator = new EventCreator({
    store,
    serverName: services.serverName,
    signingKey: services.keys.signing,
    stream,
    // Read at call time: the sync capability installs its notifier later.
    // Several event persisters: the change names its writer (readable once
    // this persister's own position covers it, whatever the others do).
    notifier: {
      notify:
        onePersisterOfSeveral
          ? (c) => services.notifier.notify({ ...c, instance: me })
          : (c) => services.notifier.notify(c),
    },
    nextStateGroup: stateGroupAllocator(services, () => ++stateGroup, (n) => (stateGroup = n)),
    cacheState: writesEvents,
    // live-streams: push evaluated before the commit; its rows are written in
    // the events' own transaction (read at call time: wired after us).
    batchRows: {
      prepare: async (roomId, events) => {
        const rows = await services.live?.push.prepareBatch(roomId, events.map((e) => ({ event: e.event, streamOrdering: e.streamOrdering })));
        return positions ? [...(rows ?? []), positions.rows(events)] : rows;
      },
      aborted: (roomId) => services.live?.push.batchAborted(roomId),
    },
    onPersisted: (roomId, events) => {
      positions?.committed(events);
      for (const l of services.roomEventListeners) l(roomId, events);
    },
    // Several event persisters: only the room's own (see RoutedRoomService).
    ...(onePersisterOfSeveral
      ? {
          ownsRoom: (roomId: string) => roomShardFor(roomId, eventWriters) === me,
          onForeignRoom: (roomId: string, type: string) =>
            services.logger.error({ roomId, type }, 'an event of another event persister\'s room reached this one: refused (a write path does not route by room)'),
        }
      : {}),
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
    // Every request names its room (createRoom: the id chosen by the caller; profile updates: one per room).
    shardKey: ((req: RoomWriteRequest) => req.roomId) as (req: RoomWriteRequest) => string,
    local: (req) => rooms.runLocal(req), // called only after `rooms` below exists
  });
  const rooms: RoutedRoomService = new RoutedRoomService(ctx, (req) => route(req));
  services.roomStore = store;
  services.eventCreator = creator;
  services.rooms = rooms;
  const rt = services.workers;
  // A room's events all come from its persister (RoutedRoomService): with
  // several, a room is read up to that persister's own position (a slow
  // persister holds back only its own rooms).
  const roomStream =
    eventWriters.length > 1
      ? (roomId: string, at?: EventsPosition) => eventsPositionFor(at ?? stream.getPosition(), roomShardFor(roomId, eventWriters))
      : (_roomId: string, at?: EventsPosition) => (at ? eventsUpperBound(at) : stream.getCurrent());
  services.roomReads = new RoomReadService(ctx, roomStream, rt ? () => rt.freshPositions() : undefined);
  services.roomDirectory = new DirectoryService(ctx, rooms, services.logger);
  services.clientEvents = serializer;
  services.roomVisibility = ctx.visibility;
  services.roomEventListeners = [];
  services.profiles?.onProfileChanged.push((userId, profile) => rooms.onProfileChanged(userId, profile));
}

/**
 * Worker mode, an event persister: each group commit of events also records
 * this persister's position (as it will be once they have finished) in
 * stream_positions, in the same statement, so that answering the sends
 * (`settleWrite`) usually has no statement of its own left to run.
 */
export function recordPositionsWithEvents(stream: Pick<MultiWriterEventsStream, 'multi'>) {
  const multi = stream.multi;
  // The rows a commit recorded, by position, until the commit is reported.
  const pending = new Map<number, Array<[string, number]>>();
  // One function for every batch: a group commit merges their rows and calls it once.
  const write: ExtraRows<number>['write'] = async (tx, ids) => {
    // A statement of an earlier transaction of these ids (a group that failed
    // and is now retried batch by batch) was rolled back: never mark it.
    for (const id of ids) pending.delete(id);
    const rec = multi.recordWith(ids);
    if (!rec) return;
    if (pending.size > 10_000) pending.clear(); // commits that failed (only an optimisation is lost)
    for (const id of ids) pending.set(id, rec.rows);
    await tx.execute(rec.sql, rec.params);
  };
  return {
    rows: (events: ReadonlyArray<{ streamOrdering: number }>): ExtraRows<number> => ({ write, rows: events.map((e) => e.streamOrdering) }),
    committed: (events: ReadonlyArray<{ streamOrdering: number }>) => {
      for (const e of events) {
        const rows = pending.get(e.streamOrdering);
        if (!rows) continue;
        pending.delete(e.streamOrdering);
        multi.markRecorded(rows);
      }
    },
  };
}
