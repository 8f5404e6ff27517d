import { describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../../src/services/accounts/passwords.js';

describe('password hashing', () => {
  it('verifies a $2b$ hash made by Python bcrypt (what Synapse uses)', async () => {
    // pyca/bcrypt test vector
    const h = new PasswordHasher(4);
    expect(await h.verify('Kk4DQuMMfZL9o', '$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm')).toBe(true);
    expect(await h.verify('Kk4DQuMMfZL9O', '$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm')).toBe(false);
  });

  it('hashes with the configured cost and verifies', async () => {
    const h = new PasswordHasher(5);
    const hash = await h.hash('correct horse');
    expect(hash).toMatch(/^\$2[ab]\$05\$/);
    expect(await h.verify('correct horse', hash)).toBe(true);
    expect(await h.verify('wrong horse', hash)).toBe(false);
  });

  it('normalises passwords with NFKC, as Synapse does', async () => {
    const h = new PasswordHasher(4);
    const hash = await h.hash('\uFB01sh'); // "ﬁsh" ligature
    expect(await h.verify('fish', hash)).toBe(true);
  });

  it('applies the pepper and never throws on junk hashes', async () => {
    const peppered = new PasswordHasher(4, 'pepper');
    const hash = await peppered.hash('pw');
    expect(await new PasswordHasher(4).verify('pw', hash)).toBe(false);
    expect(await peppered.verify('pw', hash)).toBe(true);
    expect(await peppered.verify('pw', 'not a hash')).toBe(false);
    expect(await peppered.verify('pw', null)).toBe(false);
  });
});
