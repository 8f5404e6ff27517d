/** Profiles, filters and the server key endpoint. */
import { expect, it } from 'vitest';
import { verifyJsonSignature } from '../../../src/matrix/signing.js';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';

describeShapes('accounts: profiles, filters, server keys', (server) => {
  const client = (token?: string) => new RawClient(server().baseUrl, token);

  it('starts with the localpart as display name and updates the profile', async () => {
    const u = await server().registerUser();
    const c = client(u.accessToken);
    const p = await client().get(`${V3}/profile/${enc(u.userId)}`);
    expect(p.status).toBe(200);
    expect(p.body).toEqual({ displayname: u.localpart });
    expect((await c.put(`${V3}/profile/${enc(u.userId)}/displayname`, { displayname: 'Alice A.' })).status).toBe(200);
    expect((await c.put(`${V3}/profile/${enc(u.userId)}/avatar_url`, { avatar_url: 'mxc://example.org/abc' })).status).toBe(200);
    expect((await c.get(`${V3}/profile/${enc(u.userId)}`)).body).toEqual({ displayname: 'Alice A.', avatar_url: 'mxc://example.org/abc' });
    expect((await c.get(`${V3}/profile/${enc(u.userId)}/displayname`)).body).toEqual({ displayname: 'Alice A.' });
    expect((await c.get(`${V3}/profile/${enc(u.userId)}/avatar_url`)).body).toEqual({ avatar_url: 'mxc://example.org/abc' });
  });

  it('refuses bad profile writes and unknown users', async () => {
    const u = await server().registerUser();
    const v = await server().registerUser();
    const c = client(u.accessToken);
    const other = await c.put(`${V3}/profile/${enc(v.userId)}/displayname`, { displayname: 'evil' });
    expect([other.status, other.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect((await c.put(`${V3}/profile/${enc(u.userId)}/displayname`, {})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await c.put(`${V3}/profile/${enc(u.userId)}/displayname`, { displayname: 3 })).body.errcode).toBe('M_BAD_JSON');
    expect((await c.put(`${V3}/profile/${enc(u.userId)}/avatar_url`, { avatar_url: [] })).body.errcode).toBe('M_BAD_JSON');
    expect((await c.put(`${V3}/profile/${enc(u.userId)}/displayname`, undefined, { raw: '{' })).body.errcode).toBe('M_NOT_JSON');
    expect((await client().put(`${V3}/profile/${enc(u.userId)}/displayname`, { displayname: 'x' })).body.errcode).toBe('M_MISSING_TOKEN');
    const unknown = await client().get(`${V3}/profile/${enc(`@nobody:${server().serverName}`)}`);
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    expect((await client().get(`${V3}/profile/${enc(`@nobody:${server().serverName}`)}/displayname`)).status).toBe(404);
  });

  it('stores filters and returns them', async () => {
    const u = await server().registerUser();
    const c = client(u.accessToken);
    const filter = {
      event_fields: ['type', 'content.body'],
      event_format: 'client',
      presence: { not_types: ['*'] },
      room: { rooms: ['!a:b.c'], timeline: { limit: 10, lazy_load_members: true, types: ['m.room.message'] }, include_leave: false },
    };
    const r = await c.post(`${V3}/user/${enc(u.userId)}/filter`, filter);
    expect(r.status).toBe(200);
    expect(typeof r.body.filter_id).toBe('string');
    const r2 = await c.post(`${V3}/user/${enc(u.userId)}/filter`, {});
    expect(r2.body.filter_id).not.toBe(r.body.filter_id);
    const g = await c.get(`${V3}/user/${enc(u.userId)}/filter/${r.body.filter_id}`);
    expect(g.status).toBe(200);
    expect(g.body).toEqual(filter);
    expect((await c.get(`${V3}/user/${enc(u.userId)}/filter/999999`)).body.errcode).toBe('M_NOT_FOUND');
    expect((await c.get(`${V3}/user/${enc(u.userId)}/filter/abc`)).status).toBe(404);
    const v = await server().registerUser();
    expect((await client(v.accessToken).get(`${V3}/user/${enc(u.userId)}/filter/${r.body.filter_id}`)).status).toBe(403);
    expect((await client(v.accessToken).post(`${V3}/user/${enc(u.userId)}/filter`, {})).status).toBe(403);
  });

  it('rejects invalid filters', async () => {
    const u = await server().registerUser();
    const c = client(u.accessToken);
    const cases: Array<[unknown, string]> = [
      [{ event_fields: 'type' }, 'M_BAD_JSON'],
      [{ event_format: 'xml' }, 'M_INVALID_PARAM'],
      [{ room: { timeline: { limit: 'ten' } } }, 'M_BAD_JSON'],
      [{ room: { timeline: { limit: 0 } } }, 'M_INVALID_PARAM'],
      [{ room: { rooms: ['not-a-room'] } }, 'M_INVALID_PARAM'],
      [{ room: { include_leave: 'yes' } }, 'M_BAD_JSON'],
      [{ presence: { senders: [1] } }, 'M_BAD_JSON'],
      [{ room: [] }, 'M_BAD_JSON'],
    ];
    for (const [body, errcode] of cases) {
      const r = await c.post(`${V3}/user/${enc(u.userId)}/filter`, body);
      expect([r.status, r.body.errcode], JSON.stringify(body)).toEqual([400, errcode]);
    }
    expect((await c.post(`${V3}/user/${enc(u.userId)}/filter`, undefined, { raw: 'nope' })).body.errcode).toBe('M_NOT_JSON');
  });

  it('publishes its signing keys, signed by itself', async () => {
    for (const path of ['/_matrix/key/v2/server', '/_matrix/key/v2/server/ed25519:whatever']) {
      const r = await client().get(path);
      expect(r.status).toBe(200);
      const body = r.body;
      expect(body.server_name).toBe(server().serverName);
      expect(body.old_verify_keys).toEqual({});
      const day = 24 * 3600_000;
      expect(body.valid_until_ts).toBeGreaterThan(Date.now() + day - 60_000);
      expect(body.valid_until_ts).toBeLessThan(Date.now() + day + 60_000);
      const keyIds = Object.keys(body.verify_keys);
      expect(keyIds.length).toBeGreaterThan(0);
      for (const id of keyIds) {
        expect(id).toMatch(/^ed25519:/);
        expect(verifyJsonSignature(body, server().serverName, id, body.verify_keys[id].key)).toBe(true);
      }
    }
  });
});
