/**
 * Builds the e2ee capability: key storage, the device_lists stream and its
 * tracker, the keys service (also the /sync E2EE source) and key backup.
 * Hooks the accounts DeviceService so that deleting a device removes its
 * keys and renaming one announces a device-list change, and the rooms event
 * listeners so that membership changes reach the device_lists stream.
 */
import { DeviceListTracker } from '../services/e2ee/device-lists.js';
import { KeyBackupService } from '../services/e2ee/backup-service.js';
import { KeysService } from '../services/e2ee/keys-service.js';
import { SqlBackupStore } from '../storage/e2ee/backup-store.js';
import { SqlKeysStore } from '../storage/e2ee/keys-store.js';
import { SqlSharingStore } from '../storage/e2ee/sharing-store.js';
import { StreamIdGenerator } from '../streams/id-generator.js';
import type { Services } from './services.js';

export async function wireE2ee(services: Services): Promise<void> {
  const db = services.db;
  const store = new SqlKeysStore(db);
  const positions = await StreamIdGenerator.fromTables(db, [{ table: 'device_lists_stream', column: 'stream_id' }]);
  services.streams.device_lists = positions;
  const tracker = new DeviceListTracker(db, store, new SqlSharingStore(db), positions, () => services.notifier);
  const keys = new KeysService({
    serverName: services.serverName,
    store,
    tracker,
    listDeviceIds: async (userId) => (services.devices ? (await services.devices.listDevices(userId)).map((d) => d.device_id) : []),
  });
  services.e2ee = keys;
  services.e2eeKeys = keys;
  services.keyBackup = new KeyBackupService(new SqlBackupStore(db));
  // Membership changes move users into and out of each other's device lists.
  services.roomEventListeners?.push((roomId, events) => {
    const changes = events
      .filter((e) => e.event.type === 'm.room.member' && typeof e.event.state_key === 'string')
      .map((e) => ({ roomId, userId: e.event.state_key as string, membership: String((e.event.content as any)?.membership), streamOrdering: e.streamOrdering }));
    if (!changes.length) return;
    tracker.recordMembershipChanges(changes).catch((err) => services.logger.warn({ err }, 'could not record device-list membership changes'));
  });
  if (services.devices) {
    services.devices.onDeviceDeleted.push((userId, deviceId) => keys.onDeviceDeleted(userId, deviceId));
    services.devices.onDeviceUpdated.push((userId, deviceId) => keys.onDeviceUpdated(userId, deviceId));
  }
}
