/** Builds validly signed device keys, one-time keys and cross-signing keys for raw-HTTP tests. */
import { randomBytes } from 'node:crypto';
import { encodeBase64 } from '../../../src/matrix/base64.js';
import { generateSigningKey, signJson, type SigningKey } from '../../../src/matrix/signing.js';
import type { RawClient } from '../../helpers/http.js';

export const ALGORITHMS = ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'];

/** A device's ed25519 identity key, keyed `ed25519:<deviceId>`. */
export function deviceSigningKey(deviceId: string): SigningKey {
  return generateSigningKey(deviceId.replace(/[^A-Za-z0-9_]/g, '_'));
}

/** Signs `obj` as `userId` with `key` under the key id `ed25519:<keyName>`. */
export function signAs<T extends object>(obj: T, userId: string, key: SigningKey, keyName: string): T & { signatures: Record<string, Record<string, string>> } {
  // signJson names the key `ed25519:<version>`; rebuild the key with the wanted name.
  const named = { ...key, keyId: `ed25519:${keyName}` } as SigningKey;
  return signJson(obj, userId, named);
}

export function deviceKeys(userId: string, deviceId: string, key: SigningKey, extra: Record<string, unknown> = {}) {
  const dk = {
    user_id: userId,
    device_id: deviceId,
    algorithms: ALGORITHMS,
    keys: { [`curve25519:${deviceId}`]: encodeBase64(randomBytes(32)), [`ed25519:${deviceId}`]: key.publicKeyBase64 },
    ...extra,
  };
  return signAs(dk, userId, key, deviceId);
}

/** n signed_curve25519 one-time keys with ids `<prefix>0..n-1`. */
export function oneTimeKeys(userId: string, deviceId: string, key: SigningKey, n: number, prefix = 'AAAA', fallback = false) {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = { key: encodeBase64(randomBytes(32)), ...(fallback ? { fallback: true } : {}) };
    out[`signed_curve25519:${prefix}${i}`] = signAs(k, userId, key, deviceId);
  }
  return out;
}

export interface CrossSigningSet {
  master: SigningKey;
  ssk: SigningKey;
  usk: SigningKey;
  body: Record<string, any>;
}

export function crossSigningKeys(userId: string): CrossSigningSet {
  const master = generateSigningKey();
  const ssk = generateSigningKey();
  const usk = generateSigningKey();
  const csKey = (k: SigningKey, usage: string) => ({ user_id: userId, usage: [usage], keys: { [`ed25519:${k.publicKeyBase64}`]: k.publicKeyBase64 } });
  const masterKey = csKey(master, 'master');
  const sskKey = signAs(csKey(ssk, 'self_signing'), userId, master, master.publicKeyBase64);
  const uskKey = signAs(csKey(usk, 'user_signing'), userId, master, master.publicKeyBase64);
  return { master, ssk, usk, body: { master_key: masterKey, self_signing_key: sskKey, user_signing_key: uskKey } };
}

/** Uploads fresh signed device keys for the client's device; returns the device's signing key. */
export async function uploadDeviceKeys(c: RawClient, userId: string, deviceId: string, otks = 0): Promise<{ key: SigningKey; deviceKeys: Record<string, any> }> {
  const key = deviceSigningKey(deviceId);
  const dk = deviceKeys(userId, deviceId, key);
  const r = await c.post('/_matrix/client/v3/keys/upload', { device_keys: dk, one_time_keys: oneTimeKeys(userId, deviceId, key, otks) });
  if (r.status !== 200) throw new Error(`upload failed: ${JSON.stringify(r.body)}`);
  return { key, deviceKeys: dk };
}
