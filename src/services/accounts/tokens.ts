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

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3), as zlib computes it. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

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
  return `${base}_${base62(crc32(Buffer.from(base, 'utf8')), 6)}`;
}

/** True if the token has our shape and its checksum matches (cheap pre-check before any lookup). */
export function hasValidChecksum(token: string): boolean {
  const m = /^(sy[tr]_[A-Za-z0-9_-]*_[A-Za-z]{20})_([0-9A-Za-z]{6})$/.exec(token);
  if (!m) return false;
  return base62(crc32(Buffer.from(m[1]!, 'utf8')), 6) === m[2];
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
