/**
 * Validation of uploaded key objects (client-server API, end-to-end
 * encryption module). Pure functions; errors are Matrix errors.
 */
import { canonicalJson } from '../../matrix/canonical-json.js';
import { verifyJsonSignature } from '../../matrix/signing.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { CrossSigningKeyType } from '../../storage/e2ee/keys-store.js';

export const invalidSignature = (msg = 'Invalid signature') => new MatrixError(400, 'M_INVALID_SIGNATURE', msg);

export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The part of a signed object its signatures cover, as canonical JSON (for equality checks). */
export function signedContent(obj: Record<string, any>): string {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return canonicalJson(rest);
}

/**
 * Checks uploaded device keys: they must be for the requesting user and
 * device, list algorithms, carry `ed25519:<device_id>` and be signed by that
 * key. Returns the keys as stored (without `unsigned`).
 */
export function validateDeviceKeys(dk: unknown, userId: string, deviceId: string): Record<string, any> {
  if (!isObject(dk)) throw Errors.badJson("'device_keys' must be an object");
  if (dk.user_id !== userId) throw Errors.invalidParam("'device_keys.user_id' does not match the requester");
  if (dk.device_id !== deviceId) throw Errors.invalidParam("'device_keys.device_id' does not match the requester's device");
  if (!Array.isArray(dk.algorithms) || dk.algorithms.some((a: unknown) => typeof a !== 'string')) {
    throw Errors.invalidParam("'device_keys.algorithms' must be a list of strings");
  }
  if (!isObject(dk.keys) || Object.values(dk.keys).some((k) => typeof k !== 'string')) {
    throw Errors.invalidParam("'device_keys.keys' must map key ids to strings");
  }
  for (const keyId of Object.keys(dk.keys)) {
    if (!/^[^:]+:.+$/.test(keyId)) throw Errors.invalidParam(`bad key id ${JSON.stringify(keyId)} in device_keys.keys`);
  }
  const ed = dk.keys[`ed25519:${deviceId}`];
  if (typeof ed !== 'string') throw Errors.invalidParam(`'device_keys.keys' lacks ed25519:${deviceId}`);
  if (!isObject(dk.signatures)) throw Errors.invalidParam("'device_keys.signatures' missing");
  if (!verifyJsonSignature(dk, userId, `ed25519:${deviceId}`, ed)) {
    throw Errors.invalidParam('device_keys are not signed by the device ed25519 key');
  }
  const { unsigned: _u, ...stored } = dk;
  return stored;
}

export interface ParsedKey {
  algorithm: string;
  keyId: string;
  key: unknown;
}

/**
 * Parses a `<algorithm>:<key_id>` -> key map (one_time_keys or
 * fallback_keys). Keys of `signed_*` algorithms must be objects with a `key`
 * string and signatures; when the device's ed25519 key is known the
 * signature is checked. Other algorithms take a plain string key.
 */
export function parseKeyMap(
  field: string,
  map: unknown,
  userId: string,
  deviceId: string,
  deviceEd25519: string | undefined,
): ParsedKey[] {
  if (map === undefined || map === null) return [];
  if (!isObject(map)) throw Errors.badJson(`'${field}' must be an object`);
  const out: ParsedKey[] = [];
  for (const [id, key] of Object.entries(map)) {
    const colon = id.indexOf(':');
    if (colon <= 0 || colon === id.length - 1) throw Errors.invalidParam(`bad key id ${JSON.stringify(id)} in ${field}`);
    const algorithm = id.slice(0, colon);
    const keyId = id.slice(colon + 1);
    if (algorithm.startsWith('signed_')) {
      if (!isObject(key) || typeof key.key !== 'string') throw Errors.invalidParam(`${field}.${id} must be an object with a 'key' string`);
      if (!isObject(key.signatures)) throw Errors.invalidParam(`${field}.${id} must be signed`);
      if (deviceEd25519 !== undefined && !verifyJsonSignature(key, userId, `ed25519:${deviceId}`, deviceEd25519)) {
        throw Errors.invalidParam(`${field}.${id} is not signed by the device key`);
      }
    } else if (typeof key !== 'string' && !(isObject(key) && typeof key.key === 'string')) {
      throw Errors.invalidParam(`${field}.${id} must be a key string or key object`);
    }
    out.push({ algorithm, keyId, key });
  }
  return out;
}

const USAGE: Record<string, CrossSigningKeyType> = {
  master_key: 'master',
  self_signing_key: 'self_signing',
  user_signing_key: 'user_signing',
};

export function usageOfField(field: string): CrossSigningKeyType {
  return USAGE[field]!;
}

/**
 * Checks the shape of a cross-signing key: the requester's user id, the
 * right usage, and exactly one ed25519 key whose id names its public key.
 * Returns the public key.
 */
export function validateCrossSigningKey(field: string, key: unknown, userId: string, usage: CrossSigningKeyType): string {
  if (!isObject(key)) throw Errors.badJson(`'${field}' must be an object`);
  if (key.user_id !== userId) throw Errors.invalidParam(`'${field}.user_id' does not match the requester`);
  if (!Array.isArray(key.usage) || !key.usage.includes(usage) || key.usage.some((u: unknown) => typeof u !== 'string')) {
    throw Errors.invalidParam(`'${field}.usage' must include ${usage}`);
  }
  if (!isObject(key.keys)) throw Errors.invalidParam(`'${field}.keys' must be an object`);
  const entries = Object.entries(key.keys);
  if (entries.length !== 1) throw Errors.invalidParam(`'${field}.keys' must hold exactly one key`);
  const [keyId, pub] = entries[0]!;
  if (typeof pub !== 'string' || keyId !== `ed25519:${pub}`) throw Errors.invalidParam(`'${field}.keys' must be {"ed25519:<public key>": "<public key>"}`);
  if (key.signatures !== undefined && !isObject(key.signatures)) throw Errors.invalidParam(`'${field}.signatures' must be an object`);
  return pub;
}
