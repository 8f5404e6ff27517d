/**
 * Ed25519 signing of JSON (appendices: Signing JSON) with Node's crypto, and
 * Synapse's signing key file format:
 *
 *     ed25519 a_AbCd <unpadded base64 of the 32-byte seed>
 *
 * one key per line. KeyObjects are created once per key and cached, because
 * signing and verifying happen thousands of times per second.
 */

import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { encodeBase64, tryDecodeBase64 } from './base64.js';
import { canonicalJsonBytes } from './canonical-json.js';

export interface SigningKey {
  algorithm: 'ed25519';
  /** Key version, e.g. `a_AbCd`; the key id is `ed25519:<version>`. */
  version: string;
  /** 32-byte Ed25519 seed (private key). */
  seed: Buffer;
  /** `ed25519:<version>`. */
  keyId: string;
  /** Unpadded base64 of the 32-byte public key. */
  publicKeyBase64: string;
  /** Cached Node key objects. */
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

// DER prefixes wrapping a raw 32-byte Ed25519 key (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const KEY_VERSION_RE = /^[A-Za-z0-9_]+$/;

/** Builds a SigningKey (with cached KeyObjects) from a 32-byte seed. */
export function signingKeyFromSeed(seed: Uint8Array, version: string): SigningKey {
  if (seed.length !== 32) throw new SigningKeyError(`ed25519 seed must be 32 bytes, got ${seed.length}`);
  if (!KEY_VERSION_RE.test(version)) throw new SigningKeyError(`invalid key version ${JSON.stringify(version)}`);
  const seedBuf = Buffer.from(seed);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seedBuf]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return {
    algorithm: 'ed25519',
    version,
    seed: seedBuf,
    keyId: `ed25519:${version}`,
    publicKeyBase64: encodeBase64(spki.subarray(spki.length - 32)),
    privateKey,
    publicKey,
  };
}

/**
 * Parses a Synapse signing key file: one `ed25519 <version> <seed>` per line.
 * Blank lines are ignored. Throws SigningKeyError on anything else.
 */
export function parseSigningKeys(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) throw new SigningKeyError(`signing key line ${i + 1}: expected "ed25519 <version> <key>"`);
    const [alg, version, b64] = parts as [string, string, string];
    if (alg !== 'ed25519') throw new SigningKeyError(`signing key line ${i + 1}: unsupported algorithm ${alg}`);
    const seed = tryDecodeBase64(b64);
    if (!seed) throw new SigningKeyError(`signing key line ${i + 1}: key is not valid base64`);
    keys.push(signingKeyFromSeed(seed, version));
  }
  return keys;
}

/** Like parseSigningKeys but requires at least one key and returns the first. */
export function parseSigningKey(text: string): SigningKey {
  const keys = parseSigningKeys(text);
  if (keys.length === 0) throw new SigningKeyError('signing key file holds no key');
  return keys[0]!;
}

/** The line for a key in Synapse's file format (without newline). */
export function formatSigningKey(key: Pick<SigningKey, 'algorithm' | 'version' | 'seed'>): string {
  return `${key.algorithm} ${key.version} ${encodeBase64(key.seed)}`;
}

const VERSION_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A fresh key with a version like Synapse's (`a_` + 4 random characters). */
export function generateSigningKey(version?: string): SigningKey & { line: string } {
  let v = version;
  if (v === undefined) {
    v = 'a_';
    for (const b of randomBytes(4)) v += VERSION_ALPHABET[b % VERSION_ALPHABET.length];
  }
  const key = signingKeyFromSeed(randomBytes(32), v);
  return Object.assign(key, { line: formatSigningKey(key) });
}

// ---- public keys -----------------------------------------------------------

const PUBLIC_KEY_CACHE_MAX = 4096;
const publicKeyCache = new Map<string, KeyObject>();

/**
 * A KeyObject for an unpadded-base64 Ed25519 public key, cached (bounded,
 * oldest dropped first). Returns undefined for malformed keys.
 */
export function publicKeyFromBase64(publicKeyBase64: string): KeyObject | undefined {
  const hit = publicKeyCache.get(publicKeyBase64);
  if (hit) return hit;
  const raw = tryDecodeBase64(publicKeyBase64);
  if (!raw || raw.length !== 32) return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
  if (publicKeyCache.size >= PUBLIC_KEY_CACHE_MAX) {
    publicKeyCache.delete(publicKeyCache.keys().next().value!);
  }
  publicKeyCache.set(publicKeyBase64, key);
  return key;
}

// ---- signing and verifying bytes -------------------------------------------

/** Ed25519 signature of `data`, unpadded base64. */
export function signBytes(data: Uint8Array, key: SigningKey): string {
  return encodeBase64(sign(null, data, key.privateKey));
}

/** Verifies an unpadded-base64 Ed25519 signature; false on any malformed input. */
export function verifyBytes(data: Uint8Array, signatureBase64: string, publicKey: KeyObject | string): boolean {
  const keyObj = typeof publicKey === 'string' ? publicKeyFromBase64(publicKey) : publicKey;
  if (!keyObj) return false;
  const sig = tryDecodeBase64(signatureBase64);
  if (!sig || sig.length !== 64) return false;
  try {
    return verify(null, data, keyObj, sig);
  } catch {
    return false;
  }
}

// ---- JSON ------------------------------------------------------------------

type JsonObj = Record<string, unknown>;
type Signatures = Record<string, Record<string, string>>;

/** The bytes a JSON signature covers: canonical JSON without `signatures` and `unsigned`. */
export function signableBytes(obj: JsonObj): Buffer {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return canonicalJsonBytes(rest);
}

/** Returns a copy of `signatures` with one more signature added. */
export function addSignature(signatures: unknown, serverName: string, keyId: string, sig: string): Signatures {
  const existing = isPlainObject(signatures) ? (signatures as Signatures) : {};
  const forServer = isPlainObject(existing[serverName]) ? existing[serverName] : {};
  return { ...existing, [serverName]: { ...forServer, [keyId]: sig } };
}

/**
 * Signs a JSON object as the spec says: canonical JSON of the object without
 * `signatures`/`unsigned` is signed, the signature lands in
 * `signatures[serverName]["ed25519:<version>"]`. Returns a new object;
 * `unsigned` and other servers' signatures are kept. Input is not modified.
 */
export function signJson<T extends object>(obj: T, serverName: string, key: SigningKey): T & { signatures: Signatures } {
  const o = obj as JsonObj;
  const sig = signBytes(signableBytes(o), key);
  return { ...obj, signatures: addSignature(o.signatures, serverName, key.keyId, sig) };
}

/**
 * Checks `signatures[serverName][keyId]` on `obj` against the given public
 * key (unpadded base64 or KeyObject). False if the signature is missing,
 * malformed, or wrong; never throws on bad input.
 */
export function verifyJsonSignature(
  obj: object,
  serverName: string,
  keyId: string,
  publicKey: string | KeyObject,
): boolean {
  const o = obj as JsonObj;
  const sigs = o.signatures;
  if (!isPlainObject(sigs)) return false;
  const forServer = (sigs as JsonObj)[serverName];
  if (!isPlainObject(forServer)) return false;
  const sig = (forServer as JsonObj)[keyId];
  if (typeof sig !== 'string') return false;
  let data: Buffer;
  try {
    data = signableBytes(o);
  } catch {
    return false;
  }
  return verifyBytes(data, sig, publicKey);
}

/** The `ed25519:*` key ids `serverName` has signed `obj` with. */
export function signatureKeyIds(obj: object, serverName: string): string[] {
  const sigs = (obj as JsonObj).signatures;
  if (!isPlainObject(sigs)) return [];
  const forServer = (sigs as JsonObj)[serverName];
  if (!isPlainObject(forServer)) return [];
  return Object.keys(forServer as JsonObj).filter((k) => k.startsWith('ed25519:'));
}

function isPlainObject(v: unknown): v is JsonObj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
