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
import { RoomUpgradeService } from '../services/room-upgrade/upgrade-service.js';
import { SearchService } from '../services/search/search-service.js';
import { UserDirectoryService } from '../services/user-directory/user-directory-service.js';
import { RoomsExtraStore } from '../storage/rooms-extra/store.js';
import type { Actor } from '../services/rooms/context.js';
import { makeWriter } from '../workers/runtime.js';
import { shardFor, streamWriters } from '../workers/role.js';
import type { Services } from './services.js';

interface UpgradeRequest {
  actor: Actor;
  roomId: string;
  newVersion: string;
  /** v12+: the new room's additional creators. */
  additionalCreators?: string[];
}

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
  // An upgrade writes to the old room and creates the new one: it runs in the
  // old room's events writer (locally, or over HTTP replication), like createRoom.
  const upgrader = new RoomUpgradeService({
    serverName: services.serverName,
    creator,
    roomStore,
    rooms,
    ...(services.profiles ? { profiles: services.profiles } : {}),
    logger: services.logger,
    // Several event persisters: the new room on the old room's (every event of a room on its own persister).
    ...(eventWriters.length > 1 ? { sameEventsWriter: (a: string, b: string) => shardFor(a, eventWriters) === shardFor(b, eventWriters) } : {}),
  });
  const routeUpgrade = makeWriter<UpgradeRequest, { roomId: string }>(services, {
    stream: 'events',
    endpoint: 'rooms_extra_upgrade',
    shardKey: (req) => req.roomId,
    local: async (req) => ({ roomId: await upgrader.upgrade(req.actor, req.roomId, req.newVersion, req.additionalCreators) }),
  });
  services.roomUpgrades = {
    upgrade: async (actor, roomId, newVersion, additionalCreators) =>
      (await routeUpgrade({ actor, roomId, newVersion, ...(additionalCreators ? { additionalCreators } : {}) })).roomId,
  };
  services.spaceHierarchy = new HierarchyService(info);
  services.roomSummaries = new RoomSummaryService(info, rooms);
  services.search = new SearchService({
    store,
    roomStore,
    serializer,
    visibility,
    creator,
    currentStream: () => eventsStream?.getCurrent() ?? Number.MAX_SAFE_INTEGER,
  });
  const ud = services.config.user_directory ?? {};
  services.userDirectory = new UserDirectoryService(store, {
    enabled: ud.enabled !== false,
    searchAllUsers: ud.search_all_users === true,
  });
  services.reports = new ReportService(store, roomStore, visibility, services.accounts);
}
