/** POST /register with user-interactive auth, guests, availability, registration tokens. */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';
const name = (p = 'reg') => `${p}${randomBytes(4).toString('hex')}`;

describeShapes('accounts: open registration', (server) => {
  const client = (token?: string) => new RawClient(server().baseUrl, token);

  it('answers the first request with the UIA flows, then registers with m.login.dummy', async () => {
    const username = name();
    const first = await client().post(`${V3}/register`, { username, password: 'secret-pw' });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    expect(first.body.params).toEqual({});
    expect(typeof first.body.session).toBe('string');
    expect(first.body.errcode).toBeUndefined();
    const done = await client().post(`${V3}/register`, {
      username,
      password: 'secret-pw',
      initial_device_display_name: 'Laptop',
      auth: { type: 'm.login.dummy', session: first.body.session },
    });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.user_id).toBe(`@${username}:${server().serverName}`);
    expect(done.body.access_token).toMatch(/^syt_/);
    const dev = await client(done.body.access_token).get(`${V3}/devices/${done.body.device_id}`);
    expect(dev.body.display_name).toBe('Laptop');
    // the session is finished
    const reuse = await client().post(`${V3}/register`, { username: name(), password: 'x', auth: { type: 'm.login.dummy', session: first.body.session } });
    expect(reuse.status).toBe(400);
    // and the new account can log in
    const l = await client().post(`${V3}/login`, { type: 'm.login.password', user: username, password: 'secret-pw' });
    expect(l.status).toBe(200);
  });

  it('accepts a dummy stage without a session, a device_id, inhibit_login and refresh tokens', async () => {
    const a = await client().post(`${V3}/register`, { username: name(), password: 'pw', device_id: 'DEVREG', auth: { type: 'm.login.dummy' } });
    expect(a.status).toBe(200);
    expect(a.body.device_id).toBe('DEVREG');
    const b = await client().post(`${V3}/register`, { username: name(), password: 'pw', inhibit_login: true, auth: { type: 'm.login.dummy' } });
    expect(b.status).toBe(200);
    expect(b.body.user_id).toBeTruthy();
    expect(b.body.access_token).toBeUndefined();
    expect(b.body.device_id).toBeUndefined();
    const c = await client().post(`${V3}/register`, { username: name(), password: 'pw', refresh_token: true, auth: { type: 'm.login.dummy' } });
    expect(c.body.refresh_token).toMatch(/^syr_/);
    expect(c.body.expires_in_ms).toBeGreaterThan(0);
  });

  it('lower-cases usernames and generates one when none is given', async () => {
    const n = name('Up');
    const a = await client().post(`${V3}/register`, { username: n, password: 'pw', auth: { type: 'm.login.dummy' } });
    expect(a.body.user_id).toBe(`@${n.toLowerCase()}:${server().serverName}`);
    const b = await client().post(`${V3}/register`, { password: 'pw', auth: { type: 'm.login.dummy' } });
    expect(b.status).toBe(200);
    expect(b.body.user_id).toMatch(/^@\d+:/);
  });

  it('refuses taken and invalid usernames before any auth', async () => {
    const u = await server().registerUser();
    const taken = await client().post(`${V3}/register`, { username: u.localpart, password: 'pw' });
    expect([taken.status, taken.body.errcode]).toEqual([400, 'M_USER_IN_USE']);
    for (const bad of ['has space', 'colon:', 'é', '_reserved', '1234', '', 'x'.repeat(260)]) {
      const r = await client().post(`${V3}/register`, { username: bad, password: 'pw', auth: { type: 'm.login.dummy' } });
      expect([r.status, r.body.errcode], bad).toEqual([400, 'M_INVALID_USERNAME']);
    }
  });

  it('answers bad bodies with the right errors', async () => {
    const c = client();
    const cases: Array<[unknown, string]> = [
      [{ username: 5, password: 'pw' }, 'M_BAD_JSON'],
      [{ username: name(), password: 5 }, 'M_BAD_JSON'],
      [{ username: name(), password: 'pw', auth: 'dummy' }, 'M_BAD_JSON'],
      [{ username: name(), password: 'pw', inhibit_login: 'yes' }, 'M_BAD_JSON'],
      [{ username: name(), auth: { type: 'm.login.dummy' } }, 'M_MISSING_PARAM'],
      [{ username: name(), password: 'pw', auth: { type: 'm.login.password' } }, 'M_UNRECOGNIZED'],
    ];
    for (const [body, errcode] of cases) {
      const r = await c.post(`${V3}/register`, body);
      expect([r.status, r.body.errcode], JSON.stringify(body)).toEqual([400, errcode]);
    }
    const notJson = await c.post(`${V3}/register`, undefined, { raw: '{"username":', headers: { 'content-type': 'application/json' } });
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    const unknownSession = await c.post(`${V3}/register`, { username: name(), password: 'pw', auth: { type: 'm.login.dummy', session: 'nope' } });
    expect(unknownSession.status).toBe(400);
    const kind = await c.post(`${V3}/register?kind=robot`, { username: name(), password: 'pw' });
    expect(kind.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('tells whether a username is available', async () => {
    const u = await server().registerUser();
    expect((await client().get(`${V3}/register/available?username=${name()}`)).body).toEqual({ available: true });
    const taken = await client().get(`${V3}/register/available?username=${u.localpart}`);
    expect([taken.status, taken.body.errcode]).toEqual([400, 'M_USER_IN_USE']);
    const bad = await client().get(`${V3}/register/available?username=a%20b`);
    expect(bad.body.errcode).toBe('M_INVALID_USERNAME');
    const missing = await client().get(`${V3}/register/available`);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('refuses guests when guest access is off', async () => {
    const r = await client().post(`${V3}/register?kind=guest`, {});
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });

  it('serves GET /register with the flows', async () => {
    const r = await client().get(`${V3}/register`);
    expect(r.status).toBe(200);
    expect(r.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
  });
});

describeShapes(
  'accounts: registration closed, guests allowed',
  (server) => {
    const client = (token?: string) => new RawClient(server().baseUrl, token);

    it('refuses registration with 403', async () => {
      const r = await client().post(`${V3}/register`, { username: name(), password: 'pw', auth: { type: 'm.login.dummy' } });
      expect(r.status).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    });

    it('registers guests, who may whoami but not change passwords', async () => {
      const r = await client().post(`${V3}/register?kind=guest`, { initial_device_display_name: 'guest dev' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.user_id).toMatch(/^@\d+:/);
      const w = await client(r.body.access_token).get(`${V3}/account/whoami`);
      expect(w.body).toEqual({ user_id: r.body.user_id, device_id: r.body.device_id, is_guest: true });
      const pw = await client(r.body.access_token).post(`${V3}/account/password`, { new_password: 'x' });
      expect(pw.status).toBe(403);
      expect(pw.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    });

    it('still allows shared-secret registration', async () => {
      const u = await server().registerUser();
      expect(u.accessToken).toBeTruthy();
    });
  },
  { config: { enable_registration: false, allow_guest_access: true } },
);

describeShapes(
  'accounts: registration tokens',
  (server) => {
    const client = (token?: string) => new RawClient(server().baseUrl, token);

    it('requires a valid token and counts its uses', async () => {
      const admin = await server().registerUser(undefined, { admin: true });
      const plain = await server().registerUser();
      const denied = await client(plain.accessToken).post('/_synapse/admin/v1/registration_tokens/new', {});
      expect(denied.status).toBe(403);
      const created = await client(admin.accessToken).post('/_synapse/admin/v1/registration_tokens/new', { token: 'tok-1', uses_allowed: 1 });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      expect(created.body).toEqual({ token: 'tok-1', uses_allowed: 1, pending: 0, completed: 0, expiry_time: null });
      const dup = await client(admin.accessToken).post('/_synapse/admin/v1/registration_tokens/new', { token: 'tok-1' });
      expect(dup.body.errcode).toBe('M_INVALID_PARAM');
      const random = await client(admin.accessToken).post('/_synapse/admin/v1/registration_tokens/new', { length: 10 });
      expect(random.body.token).toHaveLength(10);

      const validity = (t: string) => client().get(`/_matrix/client/v1/register/m.login.registration_token/validity?token=${t}`);
      expect((await validity('tok-1')).body).toEqual({ valid: true });
      expect((await validity('nope')).body).toEqual({ valid: false });
      expect((await client().get('/_matrix/client/v1/register/m.login.registration_token/validity')).body.errcode).toBe('M_MISSING_PARAM');

      const first = await client().post(`${V3}/register`, { username: name(), password: 'pw' });
      expect(first.status).toBe(401);
      expect(first.body.flows).toEqual([{ stages: ['m.login.registration_token'] }]);
      const dummy = await client().post(`${V3}/register`, { username: name(), password: 'pw', auth: { type: 'm.login.dummy', session: first.body.session } });
      expect(dummy.status).toBe(400);
      const wrong = await client().post(`${V3}/register`, { username: name(), password: 'pw', auth: { type: 'm.login.registration_token', token: 'nope', session: first.body.session } });
      expect(wrong.status).toBe(401);
      expect(wrong.body.errcode).toBe('M_FORBIDDEN');
      expect(wrong.body.session).toBe(first.body.session);
      expect(wrong.body.flows).toEqual([{ stages: ['m.login.registration_token'] }]);
      const ok = await client().post(`${V3}/register`, { username: name(), password: 'pw', auth: { type: 'm.login.registration_token', token: 'tok-1', session: first.body.session } });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      expect((await validity('tok-1')).body).toEqual({ valid: false });
      const list = await client(admin.accessToken).get('/_synapse/admin/v1/registration_tokens');
      expect(list.body.registration_tokens.find((t: any) => t.token === 'tok-1')).toMatchObject({ completed: 1, uses_allowed: 1 });
      const usedUp = await client().post(`${V3}/register`, { username: name(), password: 'pw', auth: { type: 'm.login.registration_token', token: 'tok-1' } });
      expect(usedUp.status).toBe(401);
    });
  },
  { config: { registration_requires_token: true } },
);
