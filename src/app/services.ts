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
}
