/**
 * Device keys, one-time and fallback keys, cross-signing keys and signatures
 * (client-server API, end-to-end encryption module), and the /sync source for
 * device lists and key counts.
 */
import { parseUserId } from '../../matrix/identifiers.js';
import { canonicalJson } from '../../matrix/canonical-json.js';
import { verifyJsonSignature } from '../../matrix/signing.js';
import { claimKey, type CrossSigningKeyType, type KeysStore, type StoredCrossSigningKey, type StoredSignature } from '../../storage/e2ee/keys-store.js';
import type { MembershipChange } from '../../storage/e2ee/sharing-store.js';
import type { E2eeSyncSource } from '../../streams/sync-sources.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { DeviceListChanges, DeviceListTracker } from './device-lists.js';
import { KeyCountCache, type KeyCounts } from './key-count-cache.js';
import {
  invalidSignature,
  isObject,
  parseKeyMap,
  signedContent,
  usageOfField,
  validateCrossSigningKey,
  validateDeviceKeys,
} from './validate-keys.js';

/** The one-time key algorithm clients count on; always reported, 0 when none. */
const SIGNED_CURVE25519 = 'signed_curve25519';

type Failures = Record<string, Record<string, unknown>>;

/**
 * The writes that touch the device_lists stream, as plain JSON so that a
 * process other than the stream's writer can send them over HTTP
 * replication (see `KeysServiceDeps.write`). `runWrite` performs them.
 */
export type E2eeWriteOp =
  | { op: 'upload'; userId: string; deviceId: string; body: Record<string, any> }
  | { op: 'cross_signing'; userId: string; keys: StoredCrossSigningKey[] }
  | { op: 'signatures'; sigs: StoredSignature[]; changed: string[] }
  | { op: 'device_deleted'; userId: string; deviceId: string }
  | { op: 'mark_changed'; userIds: string[] }
  | { op: 'memberships'; changes: Array<MembershipChange & { streamOrdering: number }> };

export interface KeysServiceDeps {
  serverName: string;
  store: KeysStore;
  tracker: DeviceListTracker;
  /** Runs a write in the device_lists writer (locally when omitted or when this process is it). */
  write?: (op: E2eeWriteOp) => Promise<unknown>;
  /** Device ids of a local user (the cross-signing public keys must not collide with them). */
  listDeviceIds(userId: string): Promise<string[]>;
  /**
   * A device's one-time or fallback keys changed: drop its cached key counts
   * here and in every other process (worker mode: the caches stream, whose
   * handler calls `dropKeyCounts`). Without it only this process's cache is
   * dropped.
   */
  keyCountsChanged?: (devices: Array<[userId: string, deviceId: string]>) => void;
}

const failure = (e: MatrixError) => ({ errcode: e.errcode, error: e.message });

/** `@localpart:server` (historical localparts allowed): enough to route a query. */
const isUserIdLike = (id: string): boolean => /^@[^:]*:.+$/.test(id);

export class KeysService implements E2eeSyncSource {
  /** Key counts per device, read by every /sync response (key-count-cache.ts). */
  private readonly counts: KeyCountCache;

  constructor(private readonly d: KeysServiceDeps) {
    this.counts = new KeyCountCache((userId, deviceId) => this.readKeyCounts(userId, deviceId));
  }

  private isLocal(userId: string): boolean {
    return parseUserId(userId)?.domain === this.d.serverName || userId.endsWith(`:${this.d.serverName}`);
  }

  private remoteServer(userId: string): string {
    const i = userId.indexOf(':');
    return i < 0 ? userId : userId.slice(i + 1);
  }

  // ---- /keys/upload -------------------------------------------------------

  async upload(userId: string, deviceId: string, body: Record<string, any>): Promise<{ one_time_key_counts: Record<string, number> }> {
    // Shape and signature checks here; the writer repeats them with the
    // stored keys and checks one-time key conflicts.
    const dk = body.device_keys === undefined || body.device_keys === null ? undefined : validateDeviceKeys(body.device_keys, userId, deviceId);
    parseKeyMap('one_time_keys', body.one_time_keys, userId, deviceId, dk?.keys?.[`ed25519:${deviceId}`]);
    parseKeyMap('fallback_keys', body.fallback_keys, userId, deviceId, dk?.keys?.[`ed25519:${deviceId}`]);
    await this.write({ op: 'upload', userId, deviceId, body });
    // The writer may be another process whose invalidation is still on its way.
    this.counts.invalidate(userId, deviceId);
    return { one_time_key_counts: await this.getOneTimeKeyCounts(userId, deviceId) };
  }

  private async write(op: E2eeWriteOp): Promise<void> {
    await (this.d.write ? this.d.write(op) : this.runWrite(op));
  }

  /** Performs a write in this process (the device_lists writer). */
  async runWrite(op: E2eeWriteOp): Promise<Record<string, never>> {
    switch (op.op) {
      case 'upload':
        try {
          await this.uploadLocal(op.userId, op.deviceId, op.body);
        } finally {
          this.keyCountsChanged([op.userId, op.deviceId]);
        }
        break;
      case 'cross_signing':
        await this.storeCrossSigningLocal(op.userId, op.keys);
        break;
      case 'signatures':
        await this.d.tracker.write(async (tx) => {
          await this.d.store.addSignatures(tx, op.sigs);
          return { value: undefined, changed: op.changed };
        });
        break;
      case 'device_deleted':
        await this.d.tracker.write(async (tx) => {
          await this.d.store.deleteDeviceKeys(tx, op.userId, op.deviceId);
          return { value: undefined, changed: [op.userId] };
        });
        this.keyCountsChanged([op.userId, op.deviceId]);
        break;
      case 'mark_changed':
        await this.d.tracker.markChanged(op.userIds);
        break;
      case 'memberships':
        await this.d.tracker.recordMembershipChanges(op.changes);
        break;
      default:
        throw Errors.invalidParam('unknown e2ee write');
    }
    return {};
  }

  private async uploadLocal(userId: string, deviceId: string, body: Record<string, any>): Promise<void> {
    const dk = body.device_keys === undefined || body.device_keys === null ? undefined : validateDeviceKeys(body.device_keys, userId, deviceId);
    const { store } = this.d;
    await this.d.tracker.write(async (tx) => {
      const changed: string[] = [];
      const existing = await store.getDeviceKeys(userId, deviceId, tx);
      if (dk && (!existing || canonicalJson(existing) !== canonicalJson(dk))) {
        await store.setDeviceKeys(tx, userId, deviceId, dk);
        changed.push(userId);
      }
      // One-time and fallback keys are checked against the device's signing key when we know it.
      const ed = (dk ?? existing)?.keys?.[`ed25519:${deviceId}`] as string | undefined;
      const otks = parseKeyMap('one_time_keys', body.one_time_keys, userId, deviceId, ed);
      const fallbacks = parseKeyMap('fallback_keys', body.fallback_keys, userId, deviceId, ed);

      if (otks.length) {
        const seen = new Map((await store.getOneTimeKeys(tx, userId, deviceId, otks)).map((k) => [`${k.algorithm}:${k.keyId}`, k.key]));
        const fresh = otks.filter((k) => {
          const old = seen.get(`${k.algorithm}:${k.keyId}`);
          if (old === undefined) return true;
          if (canonicalJson(old) !== canonicalJson(k.key)) {
            throw Errors.invalidParam(`One time key ${k.algorithm}:${k.keyId} already exists with different content`);
          }
          return false;
        });
        await store.addOneTimeKeys(tx, userId, deviceId, fresh);
      }

      const algs = new Set<string>();
      for (const f of fallbacks) {
        if (algs.has(f.algorithm)) throw Errors.invalidParam(`More than one fallback key for ${f.algorithm}`);
        algs.add(f.algorithm);
        const old = await store.getFallbackKey(tx, userId, deviceId, f.algorithm);
        // Re-uploading the same key keeps its used flag.
        if (old && old.keyId === f.keyId && canonicalJson(old.key) === canonicalJson(f.key)) continue;
        await store.setFallbackKey(tx, userId, deviceId, f.algorithm, f.keyId, f.key);
      }
      return { value: undefined, changed };
    });
  }

  // ---- /keys/query --------------------------------------------------------

  async query(requester: string, deviceKeys: unknown): Promise<Record<string, unknown>> {
    if (!isObject(deviceKeys)) throw Errors.badJson("'device_keys' must be an object");
    const failures: Failures = {};
    const local = new Map<string, string[]>();
    for (const [userId, devices] of Object.entries(deviceKeys)) {
      if (!Array.isArray(devices) || devices.some((x) => typeof x !== 'string')) {
        throw Errors.badJson(`device_keys.${userId} must be a list of device ids`);
      }
      if (!isUserIdLike(userId)) throw Errors.invalidParam(`Not a user id: ${userId}`);
      if (this.isLocal(userId)) local.set(userId, devices as string[]);
      else failures[this.remoteServer(userId)] = { status: 503, message: 'Federation is not available' };
    }
    const users = [...local.keys()];
    const [deviceMap, csKeys] = await Promise.all([this.d.store.getDeviceKeysForUsers(local), this.d.store.getCrossSigningKeys(users)]);

    // Signatures from /keys/signatures/upload on devices and cross-signing keys.
    const targets = users.map((u) => ({
      userId: u,
      keyIds: [...(deviceMap.get(u)?.keys() ?? []), ...[...(csKeys.get(u)?.values() ?? [])].map((k) => k.publicKey)],
    }));
    const sigs = await this.d.store.getSignatures(targets);
    const sigsOn = new Map<string, StoredSignature[]>();
    for (const s of sigs) {
      // A user sees signatures the key's owner made, and their own.
      if (s.userId !== s.targetUserId && s.userId !== requester) continue;
      const k = `${s.targetUserId}\u0000${s.targetKeyId}`;
      sigsOn.set(k, [...(sigsOn.get(k) ?? []), s]);
    }
    const withSigs = (userId: string, keyId: string, obj: Record<string, any>): Record<string, any> => {
      const extra = sigsOn.get(`${userId}\u0000${keyId}`);
      if (!extra) return obj;
      const signatures: Record<string, Record<string, string>> = {};
      for (const [u, m] of Object.entries(isObject(obj.signatures) ? obj.signatures : {})) signatures[u] = { ...(m as Record<string, string>) };
      for (const s of extra) (signatures[s.userId] ??= {})[s.keyId] = s.signature;
      return { ...obj, signatures };
    };

    const device_keys: Record<string, Record<string, unknown>> = {};
    const master_keys: Record<string, unknown> = {};
    const self_signing_keys: Record<string, unknown> = {};
    const user_signing_keys: Record<string, unknown> = {};
    for (const userId of users) {
      const out: Record<string, unknown> = {};
      for (const [deviceId, { key, displayName }] of deviceMap.get(userId) ?? []) {
        const k = withSigs(userId, deviceId, key);
        out[deviceId] = { ...k, unsigned: displayName != null ? { device_display_name: displayName } : {} };
      }
      device_keys[userId] = out;
      const cs = csKeys.get(userId);
      const master = cs?.get('master');
      if (master) master_keys[userId] = withSigs(userId, master.publicKey, master.key);
      const ssk = cs?.get('self_signing');
      if (ssk) self_signing_keys[userId] = withSigs(userId, ssk.publicKey, ssk.key);
      const usk = cs?.get('user_signing');
      if (usk && userId === requester) user_signing_keys[userId] = withSigs(userId, usk.publicKey, usk.key);
    }
    return { device_keys, master_keys, self_signing_keys, user_signing_keys, failures };
  }

  // ---- /keys/claim --------------------------------------------------------

  async claim(oneTimeKeys: unknown): Promise<Record<string, unknown>> {
    if (!isObject(oneTimeKeys)) throw Errors.badJson("'one_time_keys' must be an object");
    const failures: Failures = {};
    const wanted: Array<{ userId: string; deviceId: string; algorithm: string }> = [];
    for (const [userId, devices] of Object.entries(oneTimeKeys)) {
      if (!isObject(devices)) throw Errors.badJson(`one_time_keys.${userId} must map device ids to algorithms`);
      if (!isUserIdLike(userId)) throw Errors.invalidParam(`Not a user id: ${userId}`);
      for (const [deviceId, algorithm] of Object.entries(devices)) {
        if (typeof algorithm !== 'string') throw Errors.badJson(`one_time_keys.${userId}.${deviceId} must be an algorithm name`);
        if (this.isLocal(userId)) wanted.push({ userId, deviceId, algorithm });
        else failures[this.remoteServer(userId)] = { status: 503, message: 'Federation is not available' };
      }
    }
    const result: Record<string, Record<string, Record<string, unknown>>> = {};
    // Duplicate requests for one device and algorithm get one key.
    const unique = [...new Map(wanted.map((w) => [claimKey(w.userId, w.deviceId, w.algorithm), w])).values()];
    const claimed = await this.d.store.claimOneTimeKeys(unique);
    try {
      for (const w of unique) {
        // A one-time key if one is left, else the fallback key (which stays, marked used).
        const k = claimed.get(claimKey(w.userId, w.deviceId, w.algorithm)) ?? (await this.d.store.claimFallbackKey(w.userId, w.deviceId, w.algorithm));
        if (k) ((result[w.userId] ??= {})[w.deviceId] ??= {})[`${w.algorithm}:${k.keyId}`] = k.key;
      }
    } finally {
      // Every device asked for: its counts or fallback keys may have changed.
      this.keyCountsChanged(...unique.map((w) => [w.userId, w.deviceId] as [string, string]));
    }
    return { one_time_keys: result, failures };
  }

  // ---- cross-signing ------------------------------------------------------

  /**
   * Checks an upload of cross-signing keys; returns whether user-interactive
   * auth is needed (the spec waives it when the user has no master key yet,
   * or when the request only repeats the stored keys) and the keys to store.
   */
  async prepareCrossSigningUpload(
    userId: string,
    body: Record<string, any>,
  ): Promise<{ needsAuth: boolean; keys: StoredCrossSigningKey[] }> {
    const fields = ['master_key', 'self_signing_key', 'user_signing_key'] as const;
    const keys: StoredCrossSigningKey[] = [];
    for (const f of fields) {
      if (body[f] === undefined || body[f] === null) continue;
      const usage = usageOfField(f);
      const publicKey = validateCrossSigningKey(f, body[f], userId, usage);
      keys.push({ keyType: usage, publicKey, key: body[f] });
    }
    const existing = (await this.d.store.getCrossSigningKeys([userId])).get(userId) ?? new Map<CrossSigningKeyType, StoredCrossSigningKey>();
    const master = keys.find((k) => k.keyType === 'master') ?? existing.get('master');
    for (const k of keys) {
      if (k.keyType === 'master') continue;
      if (!master) throw new MatrixError(400, 'M_MISSING_PARAM', 'No master signing key is available');
      if (!verifyJsonSignature(k.key, userId, `ed25519:${master.publicKey}`, master.publicKey)) {
        throw invalidSignature(`The ${k.keyType} key is not signed by the master key`);
      }
    }
    if (keys.length) {
      const deviceIds = new Set(await this.d.listDeviceIds(userId));
      for (const k of keys) if (deviceIds.has(k.publicKey)) throw Errors.forbidden('Key ID in use');
    }
    const existingMaster = existing.get('master');
    const same = keys.every((k) => {
      const old = existing.get(k.keyType);
      return old !== undefined && canonicalJson(old.key) === canonicalJson(k.key);
    });
    return { needsAuth: existingMaster !== undefined && !same, keys };
  }

  async storeCrossSigningKeys(userId: string, keys: StoredCrossSigningKey[]): Promise<void> {
    if (keys.length) await this.write({ op: 'cross_signing', userId, keys });
  }

  private async storeCrossSigningLocal(userId: string, keys: StoredCrossSigningKey[]): Promise<void> {
    await this.d.tracker.write(async (tx) => {
      const existing = (await this.d.store.getCrossSigningKeys([userId], tx)).get(userId);
      let changed = false;
      for (const k of keys) {
        const old = existing?.get(k.keyType);
        if (old && canonicalJson(old.key) === canonicalJson(k.key)) continue;
        await this.d.store.setCrossSigningKey(tx, userId, k);
        changed = true;
      }
      return { value: undefined, changed: changed ? [userId] : [] };
    });
  }

  /** POST /keys/signatures/upload: stores the valid signatures, reports the others per key. */
  async uploadSignatures(requester: string, body: Record<string, any>): Promise<{ failures: Failures }> {
    const failures: Failures = {};
    const fail = (userId: string, keyId: string, e: MatrixError) => ((failures[userId] ??= {})[keyId] = failure(e));
    const toStore: StoredSignature[] = [];
    const changed = new Set<string>();
    const mine = (await this.d.store.getCrossSigningKeys([requester])).get(requester);

    for (const [targetUser, objs] of Object.entries(body)) {
      if (!isObject(objs)) throw Errors.badJson(`'${targetUser}' must map key ids to signed objects`);
      const targetCs = targetUser === requester ? mine : (await this.d.store.getCrossSigningKeys([targetUser])).get(targetUser);
      for (const [keyId, obj] of Object.entries(objs)) {
        try {
          if (!isObject(obj)) throw Errors.badJson('signed object must be an object');
          if (obj.user_id !== targetUser) throw Errors.invalidParam('user_id does not match');
          if (!this.isLocal(targetUser)) throw Errors.notFound('Unknown user');
          const newSigs = isObject(obj.signatures?.[requester]) ? (obj.signatures[requester] as Record<string, unknown>) : {};
          const master = targetCs?.get('master');
          let stored: Record<string, any> | undefined;
          // Which public key may make signature `sk` on this target.
          const verifiers = new Map<string, string>();
          if (targetUser === requester && master && keyId === master.publicKey) {
            // Our own master key, signed by one of our devices.
            stored = master.key;
            for (const sk of Object.keys(newSigs)) {
              const dev = sk.startsWith('ed25519:') ? sk.slice(8) : '';
              if (!dev || dev === master.publicKey) continue;
              const ed = (await this.d.store.getDeviceKeys(requester, dev))?.keys?.[`ed25519:${dev}`];
              if (typeof ed === 'string') verifiers.set(sk, ed);
            }
          } else if (targetUser === requester) {
            // One of our devices, signed by our self-signing key.
            stored = await this.d.store.getDeviceKeys(targetUser, keyId);
            const ssk = mine?.get('self_signing');
            if (ssk) verifiers.set(`ed25519:${ssk.publicKey}`, ssk.publicKey);
          } else {
            // Another user's master key, signed by our user-signing key.
            stored = master && keyId === master.publicKey ? master.key : undefined;
            const usk = mine?.get('user_signing');
            if (usk) verifiers.set(`ed25519:${usk.publicKey}`, usk.publicKey);
          }
          if (!stored) throw Errors.notFound('Unknown key');
          if (signedContent(stored) !== signedContent(obj)) throw Errors.invalidParam('Signed object does not match the stored key');
          const already = (isObject(stored.signatures?.[requester]) ? stored.signatures[requester] : {}) as Record<string, unknown>;
          const found: StoredSignature[] = [];
          for (const [sk, sig] of Object.entries(newSigs)) {
            if (already[sk] === sig) continue;
            const pub = verifiers.get(sk);
            if (pub === undefined || typeof sig !== 'string') continue;
            if (!verifyJsonSignature({ ...obj, signatures: { [requester]: { [sk]: sig } } }, requester, sk, pub)) {
              throw invalidSignature();
            }
            found.push({ userId: requester, keyId: sk, targetUserId: targetUser, targetKeyId: keyId, signature: sig });
          }
          if (!found.length) throw invalidSignature('No valid signature by an acceptable key');
          toStore.push(...found);
          // Our own keys changed for everyone; a signature on another user's
          // key matters to our own devices (Synapse's user_signature stream).
          changed.add(requester);
        } catch (e) {
          if (!(e instanceof MatrixError)) throw e;
          fail(targetUser, keyId, e);
        }
      }
    }
    if (toStore.length) await this.write({ op: 'signatures', sigs: toStore, changed: [...changed] });
    return { failures };
  }

  // ---- device lifecycle ---------------------------------------------------

  /** A deleted device loses its keys; its user's device list changed. */
  async onDeviceDeleted(userId: string, deviceId: string): Promise<void> {
    await this.write({ op: 'device_deleted', userId, deviceId });
  }

  /** A renamed device changes what /keys/query shows (its display name). */
  async onDeviceUpdated(userId: string, deviceId: string): Promise<void> {
    if (await this.d.store.getDeviceKeys(userId, deviceId)) await this.write({ op: 'mark_changed', userIds: [userId] });
  }

  /** Membership changes from persisted m.room.member events (the rooms listener). */
  async onMembershipChanges(changes: Array<MembershipChange & { streamOrdering: number }>): Promise<void> {
    if (changes.length) await this.write({ op: 'memberships', changes });
  }

  // ---- /sync and /keys/changes --------------------------------------------

  getDeviceListChanges(userId: string, from: number, to: number): Promise<DeviceListChanges> {
    return this.d.tracker.getChanges(userId, from, to);
  }

  async getOneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    return { ...(await this.counts.get(userId, deviceId)).oneTimeKeys };
  }

  async getUnusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    return [...(await this.counts.get(userId, deviceId)).unusedFallbackTypes];
  }

  /** Drops this process's cached key counts of a device (the caches stream handler). */
  dropKeyCounts(userId: string, deviceId: string): void {
    this.counts.invalidate(userId, deviceId);
  }

  /** Drops every cached key count (a process that may have missed invalidations). */
  dropAllKeyCounts(): void {
    this.counts.clear();
  }

  private keyCountsChanged(...devices: Array<[string, string]>): void {
    const unique = [...new Map(devices.map((d) => [`${d[0]}\u0000${d[1]}`, d])).values()];
    if (!unique.length) return;
    for (const [u, d] of unique) this.counts.invalidate(u, d);
    try {
      this.d.keyCountsChanged?.(unique);
    } catch {
      /* an invalidation must never fail the write */
    }
  }

  private async readKeyCounts(userId: string, deviceId: string): Promise<KeyCounts> {
    const [otk, fallback] = await Promise.all([this.d.store.countOneTimeKeys(userId, deviceId), this.d.store.unusedFallbackKeyTypes(userId, deviceId)]);
    return { oneTimeKeys: { [SIGNED_CURVE25519]: 0, ...otk }, unusedFallbackTypes: fallback };
  }
}
