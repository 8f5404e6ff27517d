/**
 * The services of one process, built by assemble.ts and handed to every
 * route module. A service never asks whether it runs in a worker: assembly
 * gives it the right implementation of each writer.
 */
import type { Logger } from 'pino';
import type { Authenticator } from '../api/types.js';
import type { LoadedConfig } from '../config/load.js';
import type { Db } from '../storage/db.js';
import type { StreamIdGenerator } from '../streams/id-generator.js';
import type { NotifiedStream, StreamNotifier } from '../streams/notifier-types.js';
import type {
  AccountDataSource,
  E2eeSyncSource,
  PresenceSource,
  PushRulesSource,
  PushSource,
  ReceiptsSource,
  ToDeviceSource,
} from '../streams/sync-sources.js';
import type { ServerKeys } from './server-keys.js';

export interface Services {
  config: LoadedConfig;
  serverName: string;
  db: Db;
  logger: Logger;
  /** This process's name (`master` for the main process, else worker_name). */
  instanceName: string;
  keys: ServerKeys;
  authenticator: Authenticator;
  /** Closed on shutdown: background loops stop, long-polls return. */
  shutdownSignal: AbortSignal;
  /** Functions to run at shutdown (timers, connections). */
  onShutdown: Array<() => Promise<void> | void>;
  /** Wakes long-polls on every stream advance (the sync capability provides it). */
  notifier: StreamNotifier;
  /** Position generator of each stream, registered by the capability that owns the stream. */
  streams: Partial<Record<NotifiedStream, StreamIdGenerator>>;

  /** /sync sources (src/streams/sync-sources.ts); each set by the capability owning the stream. */
  receipts?: ReceiptsSource;
  accountData?: AccountDataSource;
  toDevice?: ToDeviceSource;
  presence?: PresenceSource;
  push?: PushSource;
  pushRules?: PushRulesSource;
  e2ee?: E2eeSyncSource;

  // Capabilities add their services below, one block each.

  // sync (src/services/sync, src/services/typing, wired by app/wire-sync.ts)
  /** The concrete notifier (waitForChange, waitingCount); services.notifier is the same object. */
  syncNotifier: import('../streams/notifier.js').Notifier;
  /** Typing writer (routed to the typing stream writer in worker mode). */
  typing: import('../services/typing/typing-service.js').TypingWriter;
  typingReader: import('../services/typing/typing-service.js').TypingService;
  syncStore: import('../storage/sync/sync-store.js').SyncStore;
  sync: import('../services/sync/sync-service.js').SyncService;
  legacyEvents: import('../services/sync/legacy-service.js').LegacyEventsService;

  // rooms (src/services/rooms + src/storage/rooms, wired by app/wire-rooms.ts)
  roomStore: import('../storage/rooms/store.js').RoomStore;
  /** The one event-creation path (build, sign, auth-check, persist). */
  eventCreator: import('../services/rooms/event-creator.js').EventCreator;
  rooms: import('../services/rooms/room-service.js').RoomService;
  roomReads: import('../services/rooms/room-reads.js').RoomReadService;
  roomDirectory: import('../services/rooms/directory-service.js').DirectoryService;
  /** Client format of stored events (redactions, txn ids, prev_content), per batch. */
  clientEvents: import('../services/rooms/client-events.js').ClientEventSerializer;
  roomVisibility: import('../services/rooms/visibility.js').VisibilityChecker;
  /** Called after each committed batch of local events (push, appservices, ...). */
  roomEventListeners: Array<(roomId: string, events: import('../services/rooms/event-creator.js').CreatedEvent[]) => void>;

  // workers (src/workers): role, replication endpoints + client, Redis transport. Set by
  // wireWorkers before any capability; obtain writers with makeWriter() from src/workers/runtime.ts.
  workers?: import('../workers/runtime.js').WorkerRuntime;

  // accounts (src/services/accounts, wired by app/wire-accounts.ts)
  accountsStore: import('../services/accounts/store.js').AccountsStore;
  tokenAuthenticator: import('../services/accounts/authenticator.js').TokenAuthenticator;
  accounts: import('../services/accounts/account-service.js').AccountService;
  devices: import('../services/accounts/device-service.js').DeviceService;
  profiles: import('../services/accounts/profile-service.js').ProfileService;
  filters: import('../services/accounts/filter-service.js').FilterService;
  uia: import('../services/accounts/uia.js').UiaService;
  registrationTokens: import('../services/accounts/registration-tokens.js').RegistrationTokenService;
  sharedSecretRegistration: import('../services/accounts/shared-secret.js').SharedSecretRegistration;
  accountRatelimits: import('../services/accounts/index.js').AccountRatelimiters;

  // e2ee (src/services/e2ee, wired by app/wire-e2ee.ts); services.e2ee is the same KeysService
  e2eeKeys: import('../services/e2ee/keys-service.js').KeysService;
  keyBackup: import('../services/e2ee/backup-service.js').KeyBackupService;

  // live-streams (receipts, account data, to-device, presence, push; wired by app/wire-live.ts).
  // The sync sources above (receipts, accountData, toDevice, presence, push, pushRules) are these same objects.
  live?: import('./wire-live.js').LiveServices;

  // rooms-extra (relations, upgrades, spaces, summaries, search, user directory, voip, reports; wired by app/wire-rooms-extra.ts)
  roomsExtraStore: import('../storage/rooms-extra/store.js').RoomsExtraStore;
  relations: import('../services/relations/relations-service.js').RelationsService;
  roomUpgrades: import('../services/room-upgrade/upgrade-service.js').RoomUpgrader;
  spaceHierarchy: import('../services/hierarchy/hierarchy-service.js').HierarchyService;
  roomSummaries: import('../services/room-summary/summary-service.js').RoomSummaryService;
  search: import('../services/search/search-service.js').SearchService;
  userDirectory: import('../services/user-directory/user-directory-service.js').UserDirectoryService;
  reports: import('../services/reports/report-service.js').ReportService;
}
