/** The accounts store on both engines. */
import { expect, it } from 'vitest';
import { AccountsStore } from '../../src/services/accounts/store.js';
import { describeEngines } from './engines.js';

describeEngines('accounts store', (db) => {
  const store = () => new AccountsStore(db());

  it('creates users once, with a profile, and finds them case-insensitively', async () => {
    expect(await store().createUser({ userId: '@alice:t', passwordHash: 'h', admin: true, displayname: 'alice' })).toBe(true);
    expect(await store().createUser({ userId: '@alice:t', passwordHash: 'h2' })).toBe(false);
    const u = await store().getUser('@alice:t');
    expect(u).toMatchObject({ name: '@alice:t', password_hash: 'h', admin: true, is_guest: false, deactivated: false });
    expect((await store().findUsersCaseInsensitive('@ALICE:t')).map((x) => x.name)).toEqual(['@alice:t']);
    expect(await store().getProfile('@alice:t')).toEqual({ displayname: 'alice', avatar_url: null });
    await store().setProfileField('@alice:t', 'avatar_url', 'mxc://a/b');
    await store().setProfileField('@alice:t', 'displayname', null);
    expect(await store().getProfile('@alice:t')).toEqual({ displayname: null, avatar_url: 'mxc://a/b' });
  });

  it('keeps devices and tokens, and deletes a device with its tokens', async () => {
    const s = store();
    await s.createUser({ userId: '@bob:t', passwordHash: null });
    expect(await s.upsertDevice('@bob:t', 'D1', 'one')).toBe(true);
    expect(await s.upsertDevice('@bob:t', 'D1', null)).toBe(false);
    expect((await s.getDevice('@bob:t', 'D1'))?.display_name).toBe('one');
    await s.upsertDevice('@bob:t', 'D2', undefined);
    const t1 = await s.insertAccessToken({ userId: '@bob:t', deviceId: 'D1', tokenHash: 'hash1', validUntilMs: null, refreshTokenId: null });
    const t2 = await s.insertAccessToken({ userId: '@bob:t', deviceId: 'D2', tokenHash: 'hash2', validUntilMs: 5, refreshTokenId: null });
    expect(t2).toBeGreaterThan(t1);
    expect(await s.getAccessToken('hash2')).toMatchObject({ id: t2, user_id: '@bob:t', device_id: 'D2', valid_until_ms: 5, is_guest: false });
    await s.updateDeviceLastSeen('@bob:t', 'D1', 1234, '10.0.0.1', 'ua');
    expect(await s.getDevice('@bob:t', 'D1')).toMatchObject({ last_seen_ts: 1234, last_seen_ip: '10.0.0.1' });
    expect(await s.deleteDevices('@bob:t', ['D1', 'NOPE'])).toEqual(['D1']);
    expect(await s.getAccessToken('hash1')).toBeUndefined();
    expect((await s.listDevices('@bob:t')).map((d) => d.device_id)).toEqual(['D2']);
    expect(await s.tokenHashesOf('@bob:t')).toEqual(['hash2']);
  });

  it('links refresh tokens and deactivates accounts', async () => {
    const s = store();
    await s.createUser({ userId: '@carol:t', passwordHash: 'h' });
    await s.upsertDevice('@carol:t', 'C1', null);
    const r = await s.insertRefreshToken({ userId: '@carol:t', deviceId: 'C1', tokenHash: 'r1', expiryTs: null });
    await s.insertAccessToken({ userId: '@carol:t', deviceId: 'C1', tokenHash: 'a1', validUntilMs: 10, refreshTokenId: r });
    expect(await s.getRefreshToken('r1')).toMatchObject({ id: r, device_id: 'C1', next_token_id: null });
    expect((await s.getAccessToken('a1'))?.refresh_token_id).toBe(r);
    expect(await s.deactivateUser('@carol:t')).toEqual(['C1']);
    expect(await s.getUser('@carol:t')).toMatchObject({ deactivated: true, password_hash: null });
    expect(await s.getRefreshToken('r1')).toBeUndefined();
    expect(await s.getAccessToken('a1')).toBeUndefined();
  });

  it('uses nonces once and only while fresh', async () => {
    const s = store();
    await s.addNonce('n1', 1000);
    await s.addNonce('n2', 1000);
    expect(await s.takeNonce('n1', 60_000, 2000)).toBe(true);
    expect(await s.takeNonce('n1', 60_000, 2000)).toBe(false);
    expect(await s.takeNonce('n2', 60_000, 1000 + 60_001)).toBe(false);
  });

  it('counts registration token uses atomically', async () => {
    const s = store();
    expect(await s.createRegistrationToken({ token: 'once', usesAllowed: 1, expiryTime: null })).toBe(true);
    expect(await s.createRegistrationToken({ token: 'once', usesAllowed: 1, expiryTime: null })).toBe(false);
    const results = await Promise.all([s.useRegistrationToken('once'), s.useRegistrationToken('once'), s.useRegistrationToken('once')]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await s.getRegistrationToken('once')).toEqual({ token: 'once', uses_allowed: 1, pending: 0, completed: 1, expiry_time: null });
    await s.createRegistrationToken({ token: 'old', usesAllowed: null, expiryTime: 100 });
    expect(await s.useRegistrationToken('old', 200)).toBe(false);
  });

  it('numbers filters per user, also under concurrency', async () => {
    const s = store();
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => s.addFilter('@dave:t', JSON.stringify({ i }))));
    expect([...ids].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await s.addFilter('@erin:t', '{}')).toBe(0);
    const j = JSON.parse((await s.getFilter('@dave:t', ids[3]!))!);
    expect(j).toEqual({ i: 3 });
    expect(await s.getFilter('@erin:t', 5)).toBeUndefined();
  });

  it('stores UIA sessions and their stages', async () => {
    const s = store();
    await s.createUiaSession({ sessionId: 'S', uri: '/x', method: 'POST', clientdict: { a: 1 }, serverdict: {} });
    await s.markUiaStage('S', 'm.login.dummy', true);
    await s.markUiaStage('S', 'm.login.dummy', { again: 1 });
    expect(await s.getUiaStages('S')).toEqual({ 'm.login.dummy': { again: 1 } });
    expect(await s.getUiaSession('S')).toMatchObject({ uri: '/x', method: 'POST', clientdict: { a: 1 } });
    await s.deleteExpiredUiaSessions(Date.now() + 1);
    expect(await s.getUiaSession('S')).toBeUndefined();
    expect(await s.getUiaStages('S')).toEqual({});
  });
});
