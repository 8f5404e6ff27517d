/**
 * The server's Ed25519 signing keys, read from `signing_key_path` in Synapse's
 * format: one key per line, `ed25519 <version> <unpadded base64 seed>`.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface SigningKey {
  /** e.g. `ed25519:a_AbCd` */
  keyId: string;
  version: string;
  seed: Buffer;
  privateKey: KeyObject;
  /** Unpadded base64 of the 32-byte public key. */
  publicKeyBase64: string;
}

export interface ServerKeys {
  serverName: string;
  /** The key new signatures are made with (the first in the file). */
  signing: SigningKey;
  all: SigningKey[];
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function unpaddedBase64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

export function signingKeyFromSeed(version: string, seed: Buffer): SigningKey {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const pub = spki.subarray(spki.length - 32);
  return { keyId: `ed25519:${version}`, version, seed, privateKey, publicKeyBase64: unpaddedBase64(pub) };
}

/** A new key line in Synapse's format: `ed25519 a_XXXX <seed>`. */
export function newSigningKeyLine(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const rnd = randomBytes(4);
  const version = 'a_' + Array.from(rnd, (b) => alphabet[b % alphabet.length]).join('');
  return `ed25519 ${version} ${unpaddedBase64(randomBytes(32))}\n`;
}

export function parseSigningKeyFile(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const parts = t.split(/\s+/);
    if (parts.length !== 3 || parts[0] !== 'ed25519') throw new Error(`bad signing key line: expected "ed25519 <version> <seed>"`);
    keys.push(signingKeyFromSeed(parts[1]!, Buffer.from(parts[2]!, 'base64')));
  }
  if (!keys.length) throw new Error('signing key file holds no key');
  return keys;
}

export function loadServerKeys(serverName: string, path: string): ServerKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`signing_key_path: cannot read ${path}: ${(e as Error).message}`);
  }
  const all = parseSigningKeyFile(text);
  return { serverName, signing: all[0]!, all };
}

export function signBytes(key: SigningKey, data: Buffer | string): string {
  return unpaddedBase64(sign(null, typeof data === 'string' ? Buffer.from(data) : data, key.privateKey));
}
