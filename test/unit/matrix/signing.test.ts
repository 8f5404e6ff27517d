import { describe, expect, it } from 'vitest';
import {
  formatSigningKey,
  generateSigningKey,
  parseSigningKey,
  parseSigningKeys,
  publicKeyFromBase64,
  signatureKeyIds,
  signingKeyFromSeed,
  signJson,
  SigningKeyError,
  verifyJsonSignature,
} from '../../../src/matrix/signing.js';
import { decodeBase64 } from '../../../src/matrix/base64.js';

// appendices.md "Cryptographic Test Vectors"
const SEED_B64 = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1';
const KEY = signingKeyFromSeed(decodeBase64(SEED_B64), '1');

describe('signing keys', () => {
  it('derives key id and a 32-byte public key from the seed', () => {
    expect(KEY.keyId).toBe('ed25519:1');
    expect(decodeBase64(KEY.publicKeyBase64)).toHaveLength(32);
  });

  it('loads Synapse key files, several lines, blank lines ignored', () => {
    const other = generateSigningKey();
    const text = `ed25519 a_abcd ${SEED_B64}\n\n${other.line}\r\n`;
    const keys = parseSigningKeys(text);
    expect(keys.map((k) => k.version)).toEqual(['a_abcd', other.version]);
    expect(keys[0]!.publicKeyBase64).toBe(KEY.publicKeyBase64);
    expect(keys[1]!.publicKeyBase64).toBe(other.publicKeyBase64);
    expect(parseSigningKey(text).keyId).toBe('ed25519:a_abcd');
  });

  it('rejects malformed key files', () => {
    expect(() => parseSigningKey('')).toThrow(SigningKeyError);
    expect(() => parseSigningKeys('ed25519 a_x')).toThrow(SigningKeyError);
    expect(() => parseSigningKeys(`rsa a_x ${SEED_B64}`)).toThrow(/unsupported algorithm/);
    expect(() => parseSigningKeys('ed25519 a_x !!!!')).toThrow(/base64/);
    expect(() => parseSigningKeys('ed25519 a_x Zm9v')).toThrow(/32 bytes/);
    expect(() => parseSigningKeys(`ed25519 a:x ${SEED_B64}`)).toThrow(/version/);
  });

  it('generates fresh keys with a_XXXX versions that round-trip through the file format', () => {
    const k = generateSigningKey();
    expect(k.version).toMatch(/^a_[A-Za-z0-9]{4}$/);
    expect(k.line).toBe(formatSigningKey(k));
    expect(k.line).toMatch(/^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}$/);
    const back = parseSigningKey(k.line);
    expect(back.seed.equals(k.seed)).toBe(true);
    expect(back.publicKeyBase64).toBe(k.publicKeyBase64);
    expect(generateSigningKey().seed.equals(k.seed)).toBe(false);
    expect(generateSigningKey('custom').keyId).toBe('ed25519:custom');
  });
});

describe('signJson: spec test vectors', () => {
  it('signs the empty object', () => {
    expect(signJson({}, 'domain', KEY)).toEqual({
      signatures: {
        domain: {
          'ed25519:1': 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ',
        },
      },
    });
  });

  it('signs an object with data', () => {
    expect(signJson({ one: 1, two: 'Two' }, 'domain', KEY)).toEqual({
      one: 1,
      signatures: {
        domain: {
          'ed25519:1': 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
        },
      },
      two: 'Two',
    });
  });

  it('ignores signatures and unsigned when signing, keeps them in the result, does not mutate', () => {
    const input = {
      one: 1,
      two: 'Two',
      unsigned: { age_ts: 5 },
      signatures: { other: { 'ed25519:x': 'abc' } },
    };
    const copy = structuredClone(input);
    const out = signJson(input, 'domain', KEY);
    expect(input).toEqual(copy);
    expect(out.unsigned).toEqual({ age_ts: 5 });
    expect(out.signatures.other).toEqual({ 'ed25519:x': 'abc' });
    expect(out.signatures.domain!['ed25519:1']).toBe(
      'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
    );
    expect(signatureKeyIds(out, 'domain')).toEqual(['ed25519:1']);
    expect(signatureKeyIds(out, 'nobody')).toEqual([]);
  });
});

describe('verifyJsonSignature', () => {
  const signed = signJson({ one: 1, two: 'Two' }, 'domain', KEY);

  it('accepts a valid signature (public key as base64 or KeyObject)', () => {
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', KEY.publicKeyBase64)).toBe(true);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', KEY.publicKey)).toBe(true);
    expect(publicKeyFromBase64(KEY.publicKeyBase64)).toBe(publicKeyFromBase64(KEY.publicKeyBase64)); // cached
  });

  it('is unaffected by changes to unsigned or other signatures', () => {
    const changed = { ...signed, unsigned: { age: 1 }, signatures: { ...signed.signatures, x: { 'ed25519:y': 'z' } } };
    expect(verifyJsonSignature(changed, 'domain', 'ed25519:1', KEY.publicKeyBase64)).toBe(true);
  });

  it('fails with the wrong key', () => {
    const other = generateSigningKey();
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', other.publicKeyBase64)).toBe(false);
  });

  it('fails when the signed data is tampered with', () => {
    expect(verifyJsonSignature({ ...signed, one: 2 }, 'domain', 'ed25519:1', KEY.publicKeyBase64)).toBe(false);
    expect(verifyJsonSignature({ ...signed, extra: true }, 'domain', 'ed25519:1', KEY.publicKeyBase64)).toBe(false);
  });

  it('fails for missing or malformed signatures and keys, without throwing', () => {
    const pk = KEY.publicKeyBase64;
    expect(verifyJsonSignature({ one: 1 }, 'domain', 'ed25519:1', pk)).toBe(false);
    expect(verifyJsonSignature(signed, 'other', 'ed25519:1', pk)).toBe(false);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:2', pk)).toBe(false);
    expect(verifyJsonSignature({ ...signed, signatures: { domain: { 'ed25519:1': '!!' } } }, 'domain', 'ed25519:1', pk)).toBe(false);
    expect(verifyJsonSignature({ ...signed, signatures: { domain: { 'ed25519:1': 'Zm9v' } } }, 'domain', 'ed25519:1', pk)).toBe(false);
    expect(verifyJsonSignature({ ...signed, signatures: 'x' }, 'domain', 'ed25519:1', pk)).toBe(false);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', 'not-a-key')).toBe(false);
    expect(verifyJsonSignature(signed, 'domain', 'ed25519:1', 'Zm9v')).toBe(false);
    expect(verifyJsonSignature({ ...signed, f: NaN }, 'domain', 'ed25519:1', pk)).toBe(false);
  });
});
