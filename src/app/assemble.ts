/**
 * Builds the services of this process from its configuration. This is the one
 * place that knows the process's role; services get the implementations they
 * need and never ask.
 */
import type { LoadedConfig } from '../config/load.js';
import { migrate } from '../storage/migrate.js';
import { openDatabase } from '../storage/open.js';
import { createLogger } from '../util/logger.js';
import { loadServerKeys } from './server-keys.js';
import type { Services } from './services.js';
import { wireWorkers } from '../workers/runtime.js';
import { parseWorkerApp } from '../workers/role.js';
import { waitForSchema } from '../workers/schema-wait.js';
import { wireReplication } from '../workers/wire-replication.js';
import { wireAccounts } from './wire-accounts.js';
import { wireRooms } from './wire-rooms.js';
import { wireSync } from './wire-sync.js';
import { wireE2ee } from './wire-e2ee.js';
import { wireLive } from './wire-live.js';
import { wireRoomsExtra } from './wire-rooms-extra.js';

export async function assemble(config: LoadedConfig): Promise<Services> {
  const instanceName = config.worker_name ?? 'master';
  const logger = createLogger({ logConfig: config.worker_log_config ?? config.log_config, level: config.log_level, name: instanceName });
  // Written straight to stderr (not the buffered log) so that it is seen at
  // once, even when the process stops right after starting.
  if (config.unknownKeys.length) console.warn(`ignoring unknown config keys: ${config.unknownKeys.join(', ')}`);
  if (!config.signing_key_path) throw new Error('signing_key_path: required (generate one with `myelin generate-config`)');
  const keys = loadServerKeys(config.server_name, config.signing_key_path);
  const db = openDatabase(config.database, instanceName);
  // Only the main process migrates; workers wait for the schema (src/workers/schema-wait.ts).
  if (parseWorkerApp(config.worker_app) === 'main') await migrate(db);
  else await waitForSchema(db, logger);

  const shutdown = new AbortController();
  const services: Services = {
    config,
    serverName: config.server_name,
    db,
    logger,
    instanceName,
    keys,
    shutdownSignal: shutdown.signal,
    onShutdown: [() => shutdown.abort()],
    notifier: { notify: () => {} },
    streams: {},
  } as unknown as Services;
  // Capabilities wire themselves here, in dependency order: each has a
  // wire-<capability>.ts that sets its fields on `services`.
  await wireWorkers(services); // first: capabilities pick local or remote writers from it
  await wireAccounts(services);
  await wireRooms(services);
  await wireSync(services);
  await wireE2ee(services);
  await wireLive(services);
  await wireRoomsExtra(services);
  await wireReplication(services); // last: streams flow between processes (worker mode)
  return services;
}
