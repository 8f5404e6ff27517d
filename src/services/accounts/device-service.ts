/**
 * Devices of local users. Other capabilities hook in: E2EE removes a
 * device's keys in `onDeviceDeleted` and announces new devices from
 * `onDeviceCreated`.
 */
import { Errors } from '../../util/errors.js';
import type { TokenAuthenticator } from './authenticator.js';
import type { AccountsStore, DeviceRow } from './store.js';

export interface Device {
  user_id: string;
  device_id: string;
  display_name: string | null;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
}

/** The client-server API shape of a device (absent fields omitted). */
export function deviceToClient(d: Device): Record<string, unknown> {
  const out: Record<string, unknown> = { device_id: d.device_id };
  if (d.display_name != null) out.display_name = d.display_name;
  if (d.last_seen_ip != null) out.last_seen_ip = d.last_seen_ip;
  if (d.last_seen_ts != null) out.last_seen_ts = Number(d.last_seen_ts);
  return out;
}

function toDevice(r: DeviceRow): Device {
  return {
    user_id: r.user_id,
    device_id: r.device_id,
    display_name: r.display_name ?? null,
    last_seen_ts: r.last_seen_ts == null ? null : Number(r.last_seen_ts),
    last_seen_ip: r.last_seen_ip ?? null,
  };
}

export type DeviceListener = (userId: string, deviceId: string) => Promise<void> | void;

/** Longest device display name accepted (Synapse's limit). */
export const MAX_DEVICE_DISPLAY_NAME = 100;

export class DeviceService {
  /** Called after a device (and its tokens) was deleted. */
  readonly onDeviceDeleted: DeviceListener[] = [];
  /** Called after a new device was created. */
  readonly onDeviceCreated: DeviceListener[] = [];
  /** Called after a device's display name changed. */
  readonly onDeviceUpdated: DeviceListener[] = [];

  constructor(
    private readonly store: AccountsStore,
    private readonly auth: TokenAuthenticator,
  ) {}

  async getDevice(userId: string, deviceId: string): Promise<Device | undefined> {
    const r = await this.store.getDevice(userId, deviceId);
    return r ? toDevice(r) : undefined;
  }

  async listDevices(userId: string): Promise<Device[]> {
    return (await this.store.listDevices(userId)).map(toDevice);
  }

  /** Creates the device if it does not exist yet; returns true if created. */
  async ensureDevice(userId: string, deviceId: string, displayName?: string | null): Promise<boolean> {
    const created = await this.store.upsertDevice(userId, deviceId, displayName);
    if (created) await this.fire(this.onDeviceCreated, userId, deviceId);
    return created;
  }

  /** Sets the display name; false if there is no such device. */
  async setDisplayName(userId: string, deviceId: string, displayName: string | null): Promise<boolean> {
    if (displayName !== null && displayName.length > MAX_DEVICE_DISPLAY_NAME) {
      throw Errors.invalidParam(`Device display name is longer than ${MAX_DEVICE_DISPLAY_NAME} characters`);
    }
    const ok = await this.store.setDeviceDisplayName(userId, deviceId, displayName);
    if (ok) await this.fire(this.onDeviceUpdated, userId, deviceId);
    return ok;
  }

  /** Deletes devices with their access and refresh tokens; returns the ids that existed. */
  async deleteDevices(userId: string, deviceIds: string[]): Promise<string[]> {
    const unique = [...new Set(deviceIds)];
    const hashes = await this.store.tokenHashesOf(userId, unique);
    const deleted = await this.store.deleteDevices(userId, unique);
    this.auth.invalidate(hashes);
    for (const d of deleted) await this.fire(this.onDeviceDeleted, userId, d);
    return deleted;
  }

  async deleteDevice(userId: string, deviceId: string): Promise<boolean> {
    return (await this.deleteDevices(userId, [deviceId])).length > 0;
  }

  /** Runs listeners one after the other; a failing listener does not stop the others. */
  private async fire(listeners: DeviceListener[], userId: string, deviceId: string): Promise<void> {
    let first: unknown;
    for (const l of listeners) {
      try {
        await l(userId, deviceId);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }
}
