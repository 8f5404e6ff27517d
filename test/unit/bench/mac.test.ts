import { describe, expect, it } from 'vitest';
import { registrationMac } from '../../../src/bench/mac.js';

describe('shared-secret registration mac', () => {
  // Reference values from: printf 'abc\0alice\0pw\0notadmin' | openssl dgst -sha1 -hmac sekrit
  it('is HMAC-SHA1 over nonce\\0user\\0password\\0notadmin, hex', () => {
    expect(registrationMac('sekrit', 'abc', 'alice', 'pw', false)).toBe('75234cf3c9b218700b956bc57fad9ad2d6be431c');
  });
  it('uses "admin" for admins', () => {
    // printf 'n1\0bob\0p\0admin' | openssl dgst -sha1 -hmac sekrit
    expect(registrationMac('sekrit', 'n1', 'bob', 'p', true)).toBe('e4e161dbd98a66e5a59ef6e5342c27d730aa9f6e');
  });
  it('changes with every input', () => {
    const base = registrationMac('s', 'n', 'u', 'p', false);
    expect(registrationMac('s2', 'n', 'u', 'p', false)).not.toBe(base);
    expect(registrationMac('s', 'n2', 'u', 'p', false)).not.toBe(base);
    expect(registrationMac('s', 'n', 'u2', 'p', false)).not.toBe(base);
    expect(registrationMac('s', 'n', 'u', 'p2', false)).not.toBe(base);
  });
});
