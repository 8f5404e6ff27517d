/**
 * Builds the e2ee capability: key storage, the device_lists stream and its
 * tracker, the keys service (also the /sync E2EE source) and key backup.
 * Hooks the accounts DeviceService so that deleting a device removes its
 * keys and renaming one announces a device-list change, and the rooms event
 * listeners so that membership changes reach the device_lists stream.
 */
import { DeviceListTracker } from '../services/e2ee/device-lists.js';
import { KeyBackupService } from '../services/e2ee/backup-service.js';
import { KeysService, type E2eeWriteOp } from '../services/e2ee/keys-service.js';
import { SqlBackupStore } from '../storage/e2ee/backup-store.js';
import { SqlKeysStore } from '../storage/e2ee/keys-store.js';
import { SqlSharingStore } from '../storage/e2ee/sharing-store.js';
import { StreamIdGenerator } from '../streams/id-generator.js';
import { caches } from '../workers/caches.js';
import { makeWriter } from '../workers/runtime.js';
import type { Services } from './services.js';

export async function wireE2ee(services: Services): Promise<void> {
  const db = services.db;
  const store = new SqlKeysStore(db);
  // Worker mode may have installed a replicated generator for the stream already.
  const positions =
    services.streams.device_lists ??
    (await StreamIdGenerator.fromTables(db, [
      { table: 'device_lists_stream', column: 'stream_id' },
      { table: 'device_lists_room_changes', column: 'stream_id' },
    ]));
  services.streams.device_lists = positions;
  const tracker = new DeviceListTracker(db, store, new SqlSharingStore(db), positions, () => services.notifier);
  // Writes to the device_lists stream run in its writer: here, or over HTTP replication.
  const write = makeWriter<E2eeWriteOp, Record<string, never>>(services, {
    stream: 'device_lists',
    endpoint: 'e2ee_device_lists_write',
    local: (op) => keys.runWrite(op),
  });
  const keys: KeysService = new KeysService({
    serverName: services.serverName,
    store,
    tracker,
    write: (op) => write(op),
    listDeviceIds: async (userId) => (services.devices ? (await services.devices.listDevices(userId)).map((d) => d.device_id) : []),
    // Key counts cached for /sync: dropped in every process (keys: user, device, user, device, ...).
    keyCountsChanged: (devices) => caches(services).invalidate('e2ee_key_counts', devices.flat()),
  });
  caches(services).register(
    'e2ee_key_counts',
    (ids) => {
      for (let i = 0; i + 1 < ids.length; i += 2) keys.dropKeyCounts(ids[i]!, ids[i + 1]!);
    },
    () => keys.dropAllKeyCounts(),
  );
  services.e2ee = keys;
  services.e2eeKeys = keys;
  services.keyBackup = new KeyBackupService(new SqlBackupStore(db));
  // Membership changes move users into and out of each other's device lists.
  services.roomEventListeners?.push((roomId, events) => {
    const changes = events
      .filter((e) => e.event.type === 'm.room.member' && typeof e.event.state_key === 'string')
      .map((e) => ({ roomId, userId: e.event.state_key as string, membership: String((e.event.content as any)?.membership), streamOrdering: e.streamOrdering }));
    if (!changes.length) return;
    keys.onMembershipChanges(changes).catch((err) => services.logger.warn({ err }, 'could not record device-list membership changes'));
  });
  if (services.devices) {
    services.devices.onDeviceDeleted.push((userId, deviceId) => keys.onDeviceDeleted(userId, deviceId));
    services.devices.onDeviceUpdated.push((userId, deviceId) => keys.onDeviceUpdated(userId, deviceId));
  }
}
