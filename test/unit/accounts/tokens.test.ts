import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32Table } from '../../../src/util/crc32.js';
import {
  base62,
  generateDeviceId,
  generateToken,
  hashToken,
  hasValidChecksum,
  localpartOfToken,
} from '../../../src/services/accounts/tokens.js';

describe('access token format', () => {
  it('is syt_<base64url localpart>_<20 letters>_<6-char base62 crc32>', () => {
    const t = generateToken('syt', 'alice');
    const m = /^syt_([A-Za-z0-9_-]+)_([A-Za-z]{20})_([0-9A-Za-z]{6})$/.exec(t);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1]!, 'base64url').toString()).toBe('alice');
    const body = t.slice(0, t.lastIndexOf('_'));
    expect(m![3]).toBe(base62(zlibCrc32(Buffer.from(body)), 6));
    expect(hasValidChecksum(t)).toBe(true);
    expect(localpartOfToken(t)).toBe('alice');
  });

  it('encodes localparts that are not plain ASCII letters', () => {
    for (const lp of ['a.b=c/d+e-f_g', '12345', 'x'.repeat(200)]) {
      const t = generateToken('syr', lp);
      expect(t.startsWith('syr_')).toBe(true);
      expect(localpartOfToken(t)).toBe(lp);
      expect(hasValidChecksum(t)).toBe(true);
    }
  });

  it('detects a changed character through the checksum', () => {
    const t = generateToken('syt', 'bob');
    const i = t.length - 10;
    const flipped = t.slice(0, i) + (t[i] === 'a' ? 'b' : 'a') + t.slice(i + 1);
    expect(hasValidChecksum(flipped)).toBe(false);
    expect(hasValidChecksum('garbage')).toBe(false);
  });

  it('is random', () => {
    const seen = new Set(Array.from({ length: 200 }, () => generateToken('syt', 'a')));
    expect(seen.size).toBe(200);
  });

  it('computes CRC-32 like zlib and base62 with padding', () => {
    for (const s of ['', 'a', 'The quick brown fox jumps over the lazy dog', 'syt_YWxpY2U_abcdefghijklmnopqrst']) {
      expect(crc32Table(Buffer.from(s))).toBe(zlibCrc32(Buffer.from(s)));
    }
    expect(crc32Table(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
    expect(base62(0, 6)).toBe('000000');
    expect(base62(61)).toBe('z');
    expect(base62(62)).toBe('10');
    expect(base62(0xffffffff)).toBe('4gfFC3');
  });

  it('hashes tokens with SHA-256 (hex) and makes Synapse-style device ids', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(generateDeviceId()).toMatch(/^[A-Z]{10}$/);
  });
});
