/**
 * Per-device one-time key counts and unused fallback key types, as every
 * /sync response carries them (`device_one_time_keys_count`,
 * `device_unused_fallback_key_types`). They change only when the device
 * uploads keys, when someone claims one of its keys, and when the device is
 * deleted; the KeysService invalidates the device on each (through the
 * `e2ee_key_counts` cache of the caches stream, so that every process drops
 * it: a claim may run on any worker).
 *
 * A read that was under way when its device was invalidated still answers
 * its caller but is not kept (it may predate the change).
 */
export interface KeyCounts {
  oneTimeKeys: Record<string, number>;
  unusedFallbackTypes: string[];
}

interface Load {
  promise: Promise<KeyCounts>;
  stale: boolean;
}

const key = (userId: string, deviceId: string) => `${userId}\u0000${deviceId}`;

export class KeyCountCache {
  private readonly entries = new Map<string, KeyCounts>();
  private readonly loads = new Map<string, Load>();

  constructor(
    private readonly read: (userId: string, deviceId: string) => Promise<KeyCounts>,
    private readonly maxDevices = 50_000,
  ) {}

  /** The counts of a device (callers must not modify the result). */
  get(userId: string, deviceId: string): Promise<KeyCounts> {
    const k = key(userId, deviceId);
    const e = this.entries.get(k);
    if (e) return Promise.resolve(e);
    const running = this.loads.get(k);
    if (running && !running.stale) return running.promise;
    const load: Load = { stale: false, promise: undefined as unknown as Promise<KeyCounts> };
    load.promise = (async () => {
      try {
        const counts = await this.read(userId, deviceId);
        if (!load.stale && this.loads.get(k) === load) {
          if (this.entries.size >= this.maxDevices) this.entries.delete(this.entries.keys().next().value!);
          this.entries.set(k, counts);
        }
        return counts;
      } finally {
        if (this.loads.get(k) === load) this.loads.delete(k);
      }
    })();
    this.loads.set(k, load);
    return load.promise;
  }

  /** The device's keys changed (upload, claim, deletion). */
  invalidate(userId: string, deviceId: string): void {
    const k = key(userId, deviceId);
    this.entries.delete(k);
    const l = this.loads.get(k);
    if (l) l.stale = true;
  }

  clear(): void {
    this.entries.clear();
    for (const l of this.loads.values()) l.stale = true;
  }
}
