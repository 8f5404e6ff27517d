/** Shared-secret registration, login, refresh, logout, whoami — and their bad inputs. */
import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';

describeShapes('accounts: shared-secret registration, login, tokens', (server) => {
  const client = (token?: string) => new RawClient(server().baseUrl, token);
  const mac = (nonce: string, user: string, pw: string, admin: boolean) =>
    createHmac('sha1', server().sharedSecret).update(`${nonce}\0${user}\0${pw}\0${admin ? 'admin' : 'notadmin'}`).digest('hex');
  const nonce = async () => (await client().get('/_synapse/admin/v1/register')).body.nonce as string;

  it('registers with the shared secret and returns a Synapse-shaped token', async () => {
    const u = await server().registerUser(undefined, { admin: true });
    expect(u.userId).toBe(`@${u.localpart}:${server().serverName}`);
    const lp = Buffer.from(u.localpart).toString('base64url');
    expect(u.accessToken.startsWith(`syt_${lp}_`)).toBe(true);
    expect(u.accessToken).toMatch(/^syt_[A-Za-z0-9_-]+_[A-Za-z]{20}_[0-9A-Za-z]{6}$/);
    expect(u.deviceId).toMatch(/^[A-Z]{10}$/);
    const w = await client(u.accessToken).get(`${V3}/account/whoami`);
    expect(w.status).toBe(200);
    expect(w.body).toEqual({ user_id: u.userId, device_id: u.deviceId, is_guest: false });
    // r0 path and the access_token query parameter work too
    const w2 = await client().get(`/_matrix/client/r0/account/whoami?access_token=${u.accessToken}`);
    expect(w2.body.user_id).toBe(u.userId);
  });

  it('uses each nonce once, and rejects a wrong MAC or unknown nonce', async () => {
    const n = await nonce();
    expect(n).toMatch(/^[0-9a-f]{64}$/);
    const bad = await client().post('/_synapse/admin/v1/register', { nonce: n, username: 'macbad', password: 'pw', admin: false, mac: 'a'.repeat(40) });
    expect(bad.status).toBe(403);
    expect(bad.body.errcode).toBe('M_FORBIDDEN');
    // the nonce was consumed by the failed attempt
    const again = await client().post('/_synapse/admin/v1/register', { nonce: n, username: 'macbad', password: 'pw', admin: false, mac: mac(n, 'macbad', 'pw', false) });
    expect(again.status).toBe(400);
    const unknown = await client().post('/_synapse/admin/v1/register', { nonce: 'nope', username: 'x1', password: 'pw', mac: mac('nope', 'x1', 'pw', false) });
    expect(unknown.status).toBe(400);
    // admin flag is part of the MAC
    const n2 = await nonce();
    const flipped = await client().post('/_synapse/admin/v1/register', { nonce: n2, username: 'flip', password: 'pw', admin: true, mac: mac(n2, 'flip', 'pw', false) });
    expect(flipped.status).toBe(403);
  });

  it('validates the shared-secret registration body', async () => {
    const n = await nonce();
    const missing = await client().post('/_synapse/admin/v1/register', { nonce: n, password: 'pw', mac: 'x' });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    const wrongType = await client().post('/_synapse/admin/v1/register', { nonce: n, username: 5, password: 'pw', mac: 'x' });
    expect(wrongType.body.errcode).toBe('M_BAD_JSON');
    const notJson = await client().post('/_synapse/admin/v1/register', undefined, { raw: '{nope', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
  });

  it('sets the display name given to the admin API and lower-cases the username', async () => {
    const n = await nonce();
    const username = `Admin${Date.now()}`;
    const r = await client().post('/_synapse/admin/v1/register', { nonce: n, username, password: 'pw', displayname: 'The Boss', admin: false, mac: mac(n, username, 'pw', false) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.user_id).toBe(`@${username.toLowerCase()}:${server().serverName}`);
    expect(r.body.home_server).toBe(server().serverName);
    const p = await client().get(`${V3}/profile/${encodeURIComponent(r.body.user_id)}`);
    expect(p.body.displayname).toBe('The Boss');
  });

  it('refuses taken and invalid usernames over the admin API', async () => {
    const u = await server().registerUser();
    await expect(server().registerUser(u.localpart)).rejects.toThrow(/M_USER_IN_USE/);
    await expect(server().registerUser('bad:name')).rejects.toThrow(/M_INVALID_USERNAME/);
    await expect(server().registerUser('12345')).rejects.toThrow(/M_INVALID_USERNAME/);
  });

  it('lists the login flows', async () => {
    const r = await client().get(`${V3}/login`);
    expect(r.status).toBe(200);
    expect(r.body.flows).toContainEqual({ type: 'm.login.password' });
  });

  it('logs in with identifier (localpart and full id) and the legacy user field', async () => {
    const u = await server().registerUser();
    for (const body of [
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: u.password },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.userId }, password: u.password },
      { type: 'm.login.password', user: u.localpart, password: u.password },
      { type: 'm.login.password', user: u.userId.toUpperCase().replace(server().serverName.toUpperCase(), server().serverName), password: u.password },
    ]) {
      const r = await client().post(`${V3}/login`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.user_id).toBe(u.userId);
      expect(r.body.home_server).toBe(server().serverName);
      expect(r.body.device_id).toMatch(/^[A-Z]{10}$/);
      expect(r.body.refresh_token).toBeUndefined();
      const w = await client(r.body.access_token).get(`${V3}/account/whoami`);
      expect(w.body.device_id).toBe(r.body.device_id);
    }
  });

  it('reuses a given device_id and sets initial_device_display_name', async () => {
    const u = await server().registerUser();
    const body = { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: u.password, device_id: 'MYDEVICE', initial_device_display_name: 'Phone' };
    const a = await client().post(`${V3}/login`, body);
    const b = await client().post(`${V3}/login`, { ...body, initial_device_display_name: undefined });
    expect(a.body.device_id).toBe('MYDEVICE');
    expect(b.body.device_id).toBe('MYDEVICE');
    const d = await client(b.body.access_token).get(`${V3}/devices/MYDEVICE`);
    expect(d.status).toBe(200);
    expect(d.body.display_name).toBe('Phone');
    // both tokens work: they are bound to the same device
    expect((await client(a.body.access_token).get(`${V3}/account/whoami`)).status).toBe(200);
  });

  it('refuses wrong passwords and unknown users with 403 M_FORBIDDEN', async () => {
    const u = await server().registerUser();
    const wrong = await client().post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: 'wrong' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const nobody = await client().post(`${V3}/login`, { type: 'm.login.password', user: 'nobody-here', password: 'x' });
    expect(nobody.status).toBe(403);
    expect(nobody.body.errcode).toBe('M_FORBIDDEN');
    const remote = await client().post(`${V3}/login`, { type: 'm.login.password', user: `@${u.localpart}:elsewhere.example`, password: u.password });
    expect(remote.status).toBe(403);
  });

  it('answers bad login bodies with the right errors', async () => {
    const c = client();
    const cases: Array<[unknown, number, string]> = [
      [{ identifier: { type: 'm.id.user', user: 'a' }, password: 'x' }, 400, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', password: 'x' }, 400, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', user: 'a' }, 400, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', user: 'a', password: 5 }, 400, 'M_BAD_JSON'],
      [{ type: 'm.login.password', identifier: 'a', password: 'x' }, 400, 'M_BAD_JSON'],
      [{ type: 'm.login.password', identifier: { type: 'm.id.user', user: 7 }, password: 'x' }, 400, 'M_BAD_JSON'],
      [{ type: 7, user: 'a', password: 'x' }, 400, 'M_BAD_JSON'],
      [{ type: 'm.login.foo', user: 'a', password: 'x' }, 400, 'M_UNKNOWN'],
      [{ type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b' }, password: 'x' }, 400, 'M_UNKNOWN'],
      [[1, 2], 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      const r = await c.post(`${V3}/login`, body);
      expect([r.status, r.body.errcode], JSON.stringify(body)).toEqual([status, errcode]);
    }
    const notJson = await c.post(`${V3}/login`, undefined, { raw: 'not json', headers: { 'content-type': 'application/json' } });
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    // The server reads (and discards) the rest of a refused body before it
    // answers 413 and closes the connection, so a client still sending gets
    // to read the answer rather than a reset (EPIPE, ECONNRESET).
    const hugeBody = JSON.stringify({ type: 'm.login.password', user: 'a', password: 'x'.repeat(2 * 1024 * 1024) });
    for (let i = 0; i < 4; i++) {
      const huge = await c.post(`${V3}/login`, undefined, { raw: hugeBody, headers: { 'content-type': 'application/json' } });
      expect([huge.status, huge.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
    }
    // still up
    expect((await c.get('/health')).status).toBe(200);
  });

  it('rejects unknown tokens with 401 M_UNKNOWN_TOKEN and soft_logout false', async () => {
    for (const token of ['syt_Zm9v_abcdefghijklmnopqrst_000000', 'garbage']) {
      const r = await client(token).get(`${V3}/account/whoami`);
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ errcode: 'M_UNKNOWN_TOKEN', soft_logout: false });
    }
    const missing = await client().get(`${V3}/account/whoami`);
    expect(missing.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('issues refresh tokens and exchanges them', async () => {
    const u = await server().registerUser();
    const l = await client().post(`${V3}/login`, { type: 'm.login.password', user: u.localpart, password: u.password, refresh_token: true });
    expect(l.status).toBe(200);
    expect(l.body.refresh_token).toMatch(/^syr_/);
    expect(l.body.expires_in_ms).toBeGreaterThan(0);
    const r = await client().post('/_matrix/client/v3/refresh', { refresh_token: l.body.refresh_token });
    expect(r.status).toBe(200);
    expect(r.body.access_token).not.toBe(l.body.access_token);
    expect(r.body.refresh_token).not.toBe(l.body.refresh_token);
    expect(r.body.expires_in_ms).toBeGreaterThan(0);
    // the old access token ended; the new one works on the same device
    expect((await client(l.body.access_token).get(`${V3}/account/whoami`)).status).toBe(401);
    const w = await client(r.body.access_token).get(`${V3}/account/whoami`);
    expect(w.body.device_id).toBe(l.body.device_id);
    // using the new access token revoked the old refresh token
    const old = await client().post('/_matrix/client/v3/refresh', { refresh_token: l.body.refresh_token });
    expect(old.status).toBe(401);
    expect(old.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const bogus = await client().post('/_matrix/client/v1/refresh', { refresh_token: 'syr_nope' });
    expect(bogus.status).toBe(401);
    const missing = await client().post('/_matrix/client/v3/refresh', {});
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('logs out one device, and all devices', async () => {
    const u = await server().registerUser();
    const login = async () => (await client().post(`${V3}/login`, { type: 'm.login.password', user: u.localpart, password: u.password })).body;
    const a = await login();
    const b = await login();
    expect((await client(a.access_token).post(`${V3}/logout`, {})).status).toBe(200);
    expect((await client(a.access_token).get(`${V3}/account/whoami`)).status).toBe(401);
    // logging out deletes the device
    const devs = await client(b.access_token).get(`${V3}/devices`);
    expect(devs.body.devices.map((d: any) => d.device_id)).not.toContain(a.device_id);
    expect((await client(b.access_token).get(`${V3}/account/whoami`)).status).toBe(200);
    expect((await client(b.access_token).post(`${V3}/logout/all`, {})).status).toBe(200);
    for (const t of [b.access_token, u.accessToken]) expect((await client(t).get(`${V3}/account/whoami`)).status).toBe(401);
    // the password still works
    expect((await login()).access_token).toBeTruthy();
  });
});
