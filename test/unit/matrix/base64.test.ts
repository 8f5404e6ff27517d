import { describe, expect, it } from 'vitest';
import {
  Base64Error,
  base64ToUrlSafe,
  decodeBase64,
  decodeBase64Url,
  encodeBase64,
  encodeBase64Url,
  tryDecodeBase64,
} from '../../../src/matrix/base64.js';

const b = (s: string) => Buffer.from(s, 'utf8');

describe('unpadded base64 (spec examples)', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, enc] of cases) {
    it(`encodes ${JSON.stringify(plain)}`, () => {
      expect(encodeBase64(b(plain))).toBe(enc);
      expect(decodeBase64(enc).toString('utf8')).toBe(plain);
    });
  }

  it('decodes padded input too', () => {
    expect(decodeBase64('Zg==').toString()).toBe('f');
    expect(decodeBase64('Zm8=').toString()).toBe('fo');
    expect(decodeBase64Url('Zm8=').toString()).toBe('fo');
  });

  it('rejects malformed input instead of skipping characters', () => {
    expect(() => decodeBase64('Zm9v!')).toThrow(Base64Error);
    expect(() => decodeBase64('Z')).toThrow(Base64Error); // impossible length
    expect(() => decodeBase64('Zg=')).toThrow(Base64Error); // incomplete padding
    expect(() => decodeBase64('Zg===')).toThrow(Base64Error);
    expect(() => decodeBase64('Z=g')).toThrow(Base64Error);
    expect(() => decodeBase64('a-b_')).toThrow(Base64Error); // URL-safe chars in standard
    expect(() => decodeBase64Url('a+b/')).toThrow(Base64Error);
    expect(tryDecodeBase64('***')).toBeUndefined();
  });

  it('uses the URL-safe alphabet and no padding for the URL-safe variant', () => {
    const data = Buffer.from([0xfb, 0xff, 0xbf, 0xfe]);
    expect(encodeBase64(data)).toBe('+/+//g');
    expect(encodeBase64Url(data)).toBe('-_-__g');
    expect(decodeBase64Url('-_-__g')).toEqual(data);
    expect(base64ToUrlSafe('+/+//g==')).toBe('-_-__g');
  });

  it('encodes a subarray view, not the whole backing buffer', () => {
    const big = Buffer.from('xxfooxx');
    expect(encodeBase64(big.subarray(2, 5))).toBe('Zm9v');
    expect(encodeBase64(new Uint8Array([102, 111, 111]))).toBe('Zm9v');
  });

  it('round-trips random bytes', () => {
    for (let n = 0; n < 40; n++) {
      const data = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      expect(decodeBase64(encodeBase64(data))).toEqual(data);
      expect(decodeBase64Url(encodeBase64Url(data))).toEqual(data);
      expect(encodeBase64(data)).not.toContain('=');
    }
  });
});
