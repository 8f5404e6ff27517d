/** /account/password, /account/deactivate, /account/3pid and the device endpoints (with UIA). */
import { expect, it, vi } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';

describeShapes('accounts: password, deactivation, devices', (server) => {
  const client = (token?: string) => new RawClient(server().baseUrl, token);
  const login = async (u: RegisteredUser, password = u.password) =>
    client().post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password });
  const pwAuth = (u: RegisteredUser, session?: string, password = u.password) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: u.userId },
    password,
    ...(session ? { session } : {}),
  });

  it('changes the password with UIA, logging out other devices by default', async () => {
    const u = await server().registerUser();
    const other = (await login(u)).body;
    const c = client(u.accessToken);
    const first = await c.post(`${V3}/account/password`, { new_password: 'new-pw-1' });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const wrong = await c.post(`${V3}/account/password`, { new_password: 'new-pw-1', auth: pwAuth(u, first.body.session, 'wrong') });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(wrong.body.session).toBe(first.body.session);
    expect(wrong.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const ok = await c.post(`${V3}/account/password`, { new_password: 'new-pw-1', auth: pwAuth(u, first.body.session) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((await c.get(`${V3}/account/whoami`)).status).toBe(200);
    expect((await client(other.access_token).get(`${V3}/account/whoami`)).status).toBe(401);
    const devices = (await c.get(`${V3}/devices`)).body.devices.map((d: any) => d.device_id);
    expect(devices).toEqual([u.deviceId]);
    expect((await login(u)).status).toBe(403);
    expect((await login(u, 'new-pw-1')).status).toBe(200);
  });

  it('keeps other devices with logout_devices false', async () => {
    const u = await server().registerUser();
    const other = (await login(u)).body;
    const r = await client(u.accessToken).post(`${V3}/account/password`, { new_password: 'pw2', logout_devices: false, auth: pwAuth(u) });
    expect(r.status).toBe(200);
    expect((await client(other.access_token).get(`${V3}/account/whoami`)).status).toBe(200);
  });

  it("refuses another user's password in the UIA stage", async () => {
    const u = await server().registerUser();
    const v = await server().registerUser();
    const r = await client(u.accessToken).post(`${V3}/account/password`, { new_password: 'x', auth: pwAuth(v) });
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
  });

  it('validates /account/password bodies', async () => {
    const u = await server().registerUser();
    const c = client(u.accessToken);
    expect((await c.post(`${V3}/account/password`, {})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await c.post(`${V3}/account/password`, { new_password: 1 })).body.errcode).toBe('M_BAD_JSON');
    expect((await c.post(`${V3}/account/password`, { new_password: 'a', logout_devices: 'no' })).body.errcode).toBe('M_BAD_JSON');
    expect((await client().post(`${V3}/account/password`, { new_password: 'a' })).body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('deactivates an account: tokens die and login is refused', async () => {
    const u = await server().registerUser();
    const other = (await login(u)).body;
    const c = client(u.accessToken);
    const first = await c.post(`${V3}/account/deactivate`, {});
    expect(first.status).toBe(401);
    const ok = await c.post(`${V3}/account/deactivate`, { auth: pwAuth(u, first.body.session) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.id_server_unbind_result).toBe('no-support');
    for (const t of [u.accessToken, other.access_token]) expect((await client(t).get(`${V3}/account/whoami`)).status).toBe(401);
    const l = await login(u);
    expect(l.status).toBe(403);
    // the id stays taken
    const again = await client().get(`${V3}/register/available?username=${u.localpart}`);
    expect(again.body.errcode).toBe('M_USER_IN_USE');
  });

  it('deactivates without an access token, by password alone', async () => {
    const u = await server().registerUser();
    const first = await client().post(`${V3}/account/deactivate`, {});
    expect(first.status).toBe(401);
    expect((await client().post(`${V3}/account/deactivate`, { erase: 'yes' })).body.errcode).toBe('M_BAD_JSON');
    const ok = await client().post(`${V3}/account/deactivate`, { auth: pwAuth(u, first.body.session) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect((await client(u.accessToken).get(`${V3}/account/whoami`)).status).toBe(401);
    const l = await login(u);
    expect([l.status, l.body.errcode]).toEqual([403, 'M_USER_DEACTIVATED']);
  });

  it('lists no third-party ids', async () => {
    const u = await server().registerUser();
    expect((await client(u.accessToken).get(`${V3}/account/3pid`)).body).toEqual({ threepids: [] });
  });

  it('lists, reads and renames devices', async () => {
    const u = await server().registerUser();
    const c = client(u.accessToken);
    const list = await c.get(`${V3}/devices`);
    expect(list.status).toBe(200);
    expect(list.body.devices).toHaveLength(1);
    expect(list.body.devices[0].device_id).toBe(u.deviceId);
    // Requests record last-seen, written after the answer (so read until it lands).
    await c.get(`${V3}/account/whoami`);
    const one = await vi.waitFor(
      async () => {
        const r = await c.get(`${V3}/devices/${u.deviceId}`);
        expect(typeof r.body.last_seen_ts).toBe('number');
        return r;
      },
      { timeout: 5000, interval: 50 },
    );
    expect(one.body.device_id).toBe(u.deviceId);
    expect(one.body.last_seen_ip).toBeTruthy();
    expect((await c.put(`${V3}/devices/${u.deviceId}`, { display_name: 'Renamed' })).status).toBe(200);
    expect((await c.get(`${V3}/devices/${u.deviceId}`)).body.display_name).toBe('Renamed');
    expect((await c.get(`${V3}/devices/NOPE`)).body.errcode).toBe('M_NOT_FOUND');
    expect((await c.put(`${V3}/devices/NOPE`, { display_name: 'x' })).status).toBe(404);
    expect((await c.put(`${V3}/devices/${u.deviceId}`, { display_name: 5 })).body.errcode).toBe('M_BAD_JSON');
    expect((await c.put(`${V3}/devices/${u.deviceId}`, { display_name: 'x'.repeat(101) })).body.errcode).toBe('M_INVALID_PARAM');
    // another user's device is not visible
    const v = await server().registerUser();
    expect((await client(v.accessToken).get(`${V3}/devices/${u.deviceId}`)).status).toBe(404);
  });

  it('deletes a device with UIA; its tokens die', async () => {
    const u = await server().registerUser();
    const other = (await login(u)).body;
    const c = client(u.accessToken);
    const first = await c.delete(`${V3}/devices/${other.device_id}`);
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const ok = await c.delete(`${V3}/devices/${other.device_id}`, { auth: pwAuth(u, first.body.session) });
    expect(ok.status).toBe(200);
    expect((await client(other.access_token).get(`${V3}/account/whoami`)).status).toBe(401);
    expect((await c.get(`${V3}/devices/${other.device_id}`)).status).toBe(404);
    expect((await c.delete(`${V3}/devices/${other.device_id}`, { auth: pwAuth(u) })).status).toBe(404);
  });

  it('deletes several devices with POST /delete_devices', async () => {
    const u = await server().registerUser();
    const a = (await login(u)).body;
    const b = (await login(u)).body;
    const c = client(u.accessToken);
    expect((await c.post(`${V3}/delete_devices`, {})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await c.post(`${V3}/delete_devices`, { devices: 'x' })).body.errcode).toBe('M_BAD_JSON');
    const first = await c.post(`${V3}/delete_devices`, { devices: [a.device_id, b.device_id] });
    expect(first.status).toBe(401);
    const wrong = await c.post(`${V3}/delete_devices`, { devices: [a.device_id, b.device_id], auth: pwAuth(u, first.body.session, 'bad') });
    expect([wrong.status, wrong.body.errcode]).toEqual([401, 'M_FORBIDDEN']);
    const ok = await c.post(`${V3}/delete_devices`, { devices: [a.device_id, b.device_id, 'UNKNOWN'], auth: pwAuth(u, first.body.session) });
    expect(ok.status).toBe(200);
    const left = (await c.get(`${V3}/devices`)).body.devices.map((d: any) => d.device_id);
    expect(left).toEqual([u.deviceId]);
  });
});
