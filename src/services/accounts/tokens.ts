/**
 * Access and refresh tokens, shaped like Synapse's so that a reverse proxy
 * can route one user's requests to one worker by hashing the prefix:
 *
 *     syt_<base64url(localpart)>_<20 random chars>_<6-char base62 CRC-32>
 *
 * (`syr_` for refresh tokens). Tokens are random; only their SHA-256 is stored.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { sha256Hex } from '../../matrix/hashes.js';
import { crc32 } from '../../util/crc32.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Base62 of a non-negative integer, left-padded with '0' to `minWidth`. */
export function base62(n: number, minWidth = 0): string {
  let out = '';
  do {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  } while (n > 0);
  return out.padStart(minWidth, '0');
}

/** Random string of ASCII letters. */
export function randomString(length: number, alphabet = ALNUM): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export type TokenKind = 'syt' | 'syr';

export function generateToken(kind: TokenKind, localpart: string): string {
  const base = `${kind}_${Buffer.from(localpart, 'utf8').toString('base64url')}_${randomString(20)}`;
  return `${base}_${base62(crc32(base), 6)}`;
}

/** True if the token has our shape and its checksum matches (cheap pre-check before any lookup). */
export function hasValidChecksum(token: string): boolean {
  const m = /^(sy[tr]_[A-Za-z0-9_-]*_[A-Za-z]{20})_([0-9A-Za-z]{6})$/.exec(token);
  if (!m) return false;
  return base62(crc32(m[1]!), 6) === m[2];
}

/** The localpart a token was issued for (from its prefix), or undefined. */
export function localpartOfToken(token: string): string | undefined {
  const m = /^sy[tr]_([A-Za-z0-9_-]*)_[A-Za-z]{20}_[0-9A-Za-z]{6}$/.exec(token);
  if (!m) return undefined;
  return Buffer.from(m[1]!, 'base64url').toString('utf8');
}

/** The stored form of a token. */
export function hashToken(token: string): string {
  return sha256Hex(token);
}

/** Device ids like Synapse's: 10 upper-case letters. */
export function generateDeviceId(): string {
  return randomString(10, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');
}

export function randomSessionId(): string {
  return randomBytes(18).toString('base64url');
}
