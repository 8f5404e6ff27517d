import { expect, it } from 'vitest';
import { generateSigningKey, signJson, type SigningKey } from '../../../src/matrix/signing.js';
import { parseKeyMap, validateCrossSigningKey, validateDeviceKeys } from '../../../src/services/e2ee/validate-keys.js';

const U = '@alice:t';
const D = 'DEV';
const named = (k: SigningKey, name: string) => ({ ...k, keyId: `ed25519:${name}` }) as SigningKey;

function device(key: SigningKey, extra: Record<string, unknown> = {}) {
  return signJson({ user_id: U, device_id: D, algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: { [`ed25519:${D}`]: key.publicKeyBase64, [`curve25519:${D}`]: 'c' }, ...extra }, U, named(key, D));
}

it('accepts properly self-signed device keys and drops unsigned', () => {
  const k = generateSigningKey();
  const dk = { ...device(k), unsigned: { device_display_name: 'x' } };
  expect(validateDeviceKeys(dk, U, D)).not.toHaveProperty('unsigned');
});

it('rejects device keys with wrong ids, shapes or signatures', () => {
  const k = generateSigningKey();
  expect(() => validateDeviceKeys(device(k), '@bob:t', D)).toThrow(/user_id/);
  expect(() => validateDeviceKeys(device(k), U, 'OTHER')).toThrow(/device_id/);
  expect(() => validateDeviceKeys({ ...device(k), algorithms: 'x' }, U, D)).toThrow(/algorithms/);
  expect(() => validateDeviceKeys({ ...device(k), algorithms: ['m.megolm.v1.aes-sha2'] }, U, D)).toThrow(/signed/);
  const other = generateSigningKey();
  expect(() => validateDeviceKeys({ ...device(other), keys: device(k).keys }, U, D)).toThrow(/signed/);
  expect(() => validateDeviceKeys([], U, D)).toThrow();
});

it('parses one-time keys, checking signed keys against the device key', () => {
  const k = generateSigningKey();
  const good = signJson({ key: 'abc' }, U, named(k, D));
  expect(parseKeyMap('one_time_keys', { 'signed_curve25519:A': good, 'curve25519:B': 'plain' }, U, D, k.publicKeyBase64)).toEqual([
    { algorithm: 'signed_curve25519', keyId: 'A', key: good },
    { algorithm: 'curve25519', keyId: 'B', key: 'plain' },
  ]);
  expect(() => parseKeyMap('one_time_keys', { 'signed_curve25519:A': { ...good, key: 'tampered' } }, U, D, k.publicKeyBase64)).toThrow(/not signed/);
  expect(() => parseKeyMap('one_time_keys', { 'signed_curve25519:A': { key: 'abc' } }, U, D, undefined)).toThrow(/signed/);
  expect(() => parseKeyMap('one_time_keys', { ':A': good }, U, D, undefined)).toThrow(/bad key id/);
  expect(parseKeyMap('one_time_keys', undefined, U, D, undefined)).toEqual([]);
});

it('validates cross-signing key shapes', () => {
  const k = generateSigningKey();
  const master = { user_id: U, usage: ['master'], keys: { [`ed25519:${k.publicKeyBase64}`]: k.publicKeyBase64 } };
  expect(validateCrossSigningKey('master_key', master, U, 'master')).toBe(k.publicKeyBase64);
  expect(() => validateCrossSigningKey('master_key', master, '@bob:t', 'master')).toThrow(/user_id/);
  expect(() => validateCrossSigningKey('master_key', master, U, 'self_signing')).toThrow(/usage/);
  expect(() => validateCrossSigningKey('master_key', { ...master, keys: { 'ed25519:x': k.publicKeyBase64 } }, U, 'master')).toThrow();
  expect(() => validateCrossSigningKey('master_key', { ...master, keys: { ...master.keys, 'ed25519:y': 'y' } }, U, 'master')).toThrow(/exactly one/);
});
