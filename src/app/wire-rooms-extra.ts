/**
 * Builds the rooms-extra capability on top of the rooms services: relations
 * and threads (plus bundled aggregations, installed as a decorator of the
 * shared client-event serializer so /sync, /messages, /context, /event and
 * relations all serve them), room upgrades, the space hierarchy, room
 * summaries, search, the user directory, TURN credentials and reports.
 */
import { HierarchyService } from '../services/hierarchy/hierarchy-service.js';
import { RoomInfoReader } from '../services/hierarchy/room-info.js';
import { AggregationBundler } from '../services/relations/aggregations.js';
import { RelationsService } from '../services/relations/relations-service.js';
import { ReportService } from '../services/reports/report-service.js';
import { RoomSummaryService } from '../services/room-summary/summary-service.js';
import { RoomUpgradeService, type ReplacementRoom } from '../services/room-upgrade/upgrade-service.js';
import { SearchService } from '../services/search/search-service.js';
import { UserDirectoryService } from '../services/user-directory/user-directory-service.js';
import { RoomsExtraStore } from '../storage/rooms-extra/store.js';
import { makeWriter } from '../workers/runtime.js';
import { roomShardFor, streamWriters } from '../workers/role.js';
import { eventsPositionFor, type EventsPosition } from '../streams/tokens.js';
import type { Services } from './services.js';

export async function wireRoomsExtra(services: Services): Promise<void> {
  const store = new RoomsExtraStore(services.db);
  const { roomStore, clientEvents: serializer, roomVisibility: visibility, roomReads, eventCreator: creator, rooms } = services;
  const bundler = new AggregationBundler(store, visibility, serializer);
  serializer.decorators.push((events, out, viewer) => bundler.bundle(events, out, viewer));

  const info = new RoomInfoReader(creator, roomStore);
  const eventsStream = services.streams.events;
  const eventWriters = streamWriters(services.config).events;
  services.roomsExtraStore = store;
  services.relations = new RelationsService({ store, roomStore, roomReads, serializer, visibility });
  // An upgrade runs in the process that answers it: the new room's events
  // are created in its own events writer (this route), the old room's
  // through the routed room writes (`rooms`).
  const routeReplacement = makeWriter<ReplacementRoom, Record<string, never>>(services, {
    stream: 'events',
    endpoint: 'rooms_extra_upgrade_create',
    shardKey: (req) => req.roomId,
    local: async (req) => (await upgrader.createReplacementRoom(req), {}),
  });
  const upgrader: RoomUpgradeService = new RoomUpgradeService({
    serverName: services.serverName,
    creator,
    roomStore,
    rooms,
    ...(services.profiles ? { profiles: services.profiles } : {}),
    logger: services.logger,
    createRoomEvents: async (req) => void (await routeReplacement(req)),
  });
  services.roomUpgrades = upgrader;
  services.spaceHierarchy = new HierarchyService(info);
  services.roomSummaries = new RoomSummaryService(info, rooms);
  services.search = new SearchService({
    store,
    roomStore,
    serializer,
    visibility,
    creator,
    position: () => eventsStream?.getPosition() ?? { min: Number.MAX_SAFE_INTEGER },
    // Several event persisters: a room is searched up to its own persister's position.
    ...(eventWriters.length > 1
      ? { roomStream: (roomId: string, at: EventsPosition) => eventsPositionFor(at, roomShardFor(roomId, eventWriters)) }
      : {}),
    ...(services.workers ? { freshPositions: () => services.workers!.freshPositions() } : {}),
  });
  const ud = services.config.user_directory ?? {};
  services.userDirectory = new UserDirectoryService(store, {
    enabled: ud.enabled !== false,
    searchAllUsers: ud.search_all_users === true,
  });
  services.reports = new ReportService(store, roomStore, visibility, services.accounts);
}
