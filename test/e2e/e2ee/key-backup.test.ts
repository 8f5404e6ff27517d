import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';
const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';
const ROOM = '!room:example.org';
const R = encodeURIComponent(ROOM);

function session(opts: { verified?: boolean; index?: number; forwarded?: number; tag?: string } = {}) {
  return {
    first_message_index: opts.index ?? 0,
    forwarded_count: opts.forwarded ?? 0,
    is_verified: opts.verified ?? false,
    session_data: { ephemeral: 'eph', ciphertext: opts.tag ?? 'ct', mac: 'mac' },
  };
}

describeShapes('e2ee: server-side key backup', (server) => {
  const as = (u: RegisteredUser) => new RawClient(server().baseUrl, u.accessToken);

  it('creates, reads, updates and deletes backup versions', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    let r = await c.get(`${V3}/room_keys/version`);
    expect(r.status).toBe(404);
    expect(r.body.errcode).toBe('M_NOT_FOUND');

    r = await c.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: { public_key: 'pk1' } });
    expect(r.status).toBe(200);
    const v1 = r.body.version;
    expect(typeof v1).toBe('string');
    r = await c.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: { public_key: 'pk2' } });
    const v2 = r.body.version;
    expect(v2).not.toBe(v1);

    r = await c.get(`${V3}/room_keys/version`);
    expect(r.body).toMatchObject({ algorithm: ALG, auth_data: { public_key: 'pk2' }, version: v2, count: 0 });
    expect(typeof r.body.etag).toBe('string');
    r = await c.get(`${V3}/room_keys/version/${v1}`);
    expect(r.body.auth_data).toEqual({ public_key: 'pk1' });

    r = await c.put(`${V3}/room_keys/version/${v2}`, { algorithm: ALG, auth_data: { public_key: 'pk2', signatures: {} }, version: v2 });
    expect(r.status).toBe(200);
    expect((await c.get(`${V3}/room_keys/version/${v2}`)).body.auth_data).toEqual({ public_key: 'pk2', signatures: {} });
    r = await c.put(`${V3}/room_keys/version/${v2}`, { algorithm: ALG, auth_data: {}, version: v1 });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');
    r = await c.put(`${V3}/room_keys/version/${v2}`, { algorithm: 'm.other', auth_data: {} });
    expect(r.status).toBe(400);
    r = await c.put(`${V3}/room_keys/version/999`, { algorithm: ALG, auth_data: {} });
    expect(r.status).toBe(404);

    r = await c.post(`${V3}/room_keys/version`, { algorithm: 'm.unknown', auth_data: {} });
    expect(r.status).toBe(400);
    r = await c.post(`${V3}/room_keys/version`, { algorithm: ALG });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_MISSING_PARAM');

    r = await c.delete(`${V3}/room_keys/version/${v2}`);
    expect(r.status).toBe(200);
    r = await c.delete(`${V3}/room_keys/version/${v2}`);
    expect(r.status).toBe(200);
    r = await c.get(`${V3}/room_keys/version/${v2}`);
    expect(r.status).toBe(404);
    // The latest non-deleted version is current again.
    r = await c.get(`${V3}/room_keys/version`);
    expect(r.body.version).toBe(v1);
    r = await c.delete(`${V3}/room_keys/version/12345`);
    expect(r.status).toBe(404);
    r = await c.get(`${V3}/room_keys/version/notanumber`);
    expect(r.status).toBe(404);
    // Another user sees none of it.
    const bob = await server().registerUser();
    expect((await as(bob).get(`${V3}/room_keys/version/${v1}`)).status).toBe(404);
  });

  it('stores and serves keys with etag and count, keeping only better sessions', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    const v = (await c.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: { public_key: 'pk' } })).body.version;

    let r = await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, session({ index: 5, tag: 'a' }));
    expect(r.status).toBe(200);
    expect(r.body.count).toBe(1);
    const etag1 = r.body.etag;

    // Worse (higher index): kept the old one, etag unchanged.
    r = await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, session({ index: 7, tag: 'worse' }));
    expect(r.body).toEqual({ etag: etag1, count: 1 });
    expect((await c.get(`${V3}/room_keys/keys/${R}/s1?version=${v}`)).body.session_data.ciphertext).toBe('a');

    // Better (lower index): replaced.
    r = await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, session({ index: 2, forwarded: 3, tag: 'b' }));
    expect(r.body.etag).not.toBe(etag1);
    expect((await c.get(`${V3}/room_keys/keys/${R}/s1?version=${v}`)).body.session_data.ciphertext).toBe('b');

    // Same index, fewer forwards: replaced. Then verified beats a lower index.
    await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, session({ index: 2, forwarded: 1, tag: 'c' }));
    expect((await c.get(`${V3}/room_keys/keys/${R}/s1?version=${v}`)).body.session_data.ciphertext).toBe('c');
    await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, session({ index: 9, verified: true, tag: 'd' }));
    expect((await c.get(`${V3}/room_keys/keys/${R}/s1?version=${v}`)).body.session_data.ciphertext).toBe('d');
    // Unverified never replaces verified.
    await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, session({ index: 0, tag: 'e' }));
    expect((await c.get(`${V3}/room_keys/keys/${R}/s1?version=${v}`)).body.session_data.ciphertext).toBe('d');

    // Bulk forms.
    r = await c.put(`${V3}/room_keys/keys/${R}?version=${v}`, { sessions: { s2: session(), s3: session() } });
    expect(r.body.count).toBe(3);
    r = await c.put(`${V3}/room_keys/keys?version=${v}`, { rooms: { '!other:example.org': { sessions: { s4: session() } } } });
    expect(r.body.count).toBe(4);

    r = await c.get(`${V3}/room_keys/keys?version=${v}`);
    expect(Object.keys(r.body.rooms).sort()).toEqual(['!other:example.org', ROOM].sort());
    expect(Object.keys(r.body.rooms[ROOM].sessions).sort()).toEqual(['s1', 's2', 's3']);
    expect(r.body.rooms[ROOM].sessions.s1).toEqual(session({ index: 9, verified: true, tag: 'd' }));
    r = await c.get(`${V3}/room_keys/keys/${encodeURIComponent('!empty:example.org')}?version=${v}`);
    expect(r.body).toEqual({ sessions: {} });
    r = await c.get(`${V3}/room_keys/keys/${R}/nosuch?version=${v}`);
    expect(r.status).toBe(404);
    expect(r.body.errcode).toBe('M_NOT_FOUND');

    const info = await c.get(`${V3}/room_keys/version`);
    expect(info.body.count).toBe(4);

    r = await c.delete(`${V3}/room_keys/keys/${R}/s2?version=${v}`);
    expect(r.body.count).toBe(3);
    r = await c.delete(`${V3}/room_keys/keys/${R}?version=${v}`);
    expect(r.body.count).toBe(1);
    r = await c.delete(`${V3}/room_keys/keys?version=${v}`);
    expect(r.body.count).toBe(0);
    expect((await c.get(`${V3}/room_keys/keys?version=${v}`)).body).toEqual({ rooms: {} });

    // Bad bodies.
    r = await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v}`, { first_message_index: 'x', forwarded_count: 0, is_verified: false, session_data: {} });
    expect(r.status).toBe(400);
    r = await c.put(`${V3}/room_keys/keys?version=${v}`, { rooms: [] });
    expect(r.status).toBe(400);
  });

  it('refuses writes to anything but the current version', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    let r = await c.put(`${V3}/room_keys/keys/${R}/s1?version=1`, session());
    expect(r.status).toBe(404);
    const v1 = (await c.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: {} })).body.version;
    await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v1}`, session());
    const v2 = (await c.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: {} })).body.version;
    r = await c.put(`${V3}/room_keys/keys/${R}/s1?version=${v1}`, session());
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_WRONG_ROOM_KEYS_VERSION');
    expect(r.body.current_version).toBe(v2);
    r = await c.put(`${V3}/room_keys/keys?version=999`, { rooms: {} });
    expect(r.status).toBe(403);
    expect(r.body.current_version).toBe(v2);
    r = await c.put(`${V3}/room_keys/keys/${R}/s1`, session());
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_MISSING_PARAM');
    // The old version can still be read; an unknown one cannot.
    r = await c.get(`${V3}/room_keys/keys/${R}/s1?version=${v1}`);
    expect(r.status).toBe(200);
    r = await c.get(`${V3}/room_keys/keys?version=999`);
    expect(r.status).toBe(404);
    // Deleting a version deletes its keys.
    await c.delete(`${V3}/room_keys/version/${v1}`);
    r = await c.get(`${V3}/room_keys/keys?version=${v1}`);
    expect(r.status).toBe(404);
  });
});
