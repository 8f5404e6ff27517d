import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';
import { deviceKeys, deviceSigningKey, oneTimeKeys, uploadDeviceKeys } from './keys-helpers.js';

const V3 = '/_matrix/client/v3';

describeShapes('e2ee: device keys, one-time keys, fallback keys', (server) => {
  const as = (u: RegisteredUser) => new RawClient(server().baseUrl, u.accessToken);

  it('uploads signed device keys and one-time keys, returns counts, serves them in /keys/query', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const c = as(alice);
    const key = deviceSigningKey(alice.deviceId);
    const dk = deviceKeys(alice.userId, alice.deviceId, key);
    const r = await c.post(`${V3}/keys/upload`, { device_keys: dk, one_time_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 5) });
    expect(r.status).toBe(200);
    expect(r.body.one_time_key_counts.signed_curve25519).toBe(5);

    await c.put(`${V3}/devices/${encodeURIComponent(alice.deviceId)}`, { display_name: 'Alice phone' });
    const q = await as(bob).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(q.status).toBe(200);
    const got = q.body.device_keys[alice.userId][alice.deviceId];
    expect(got.keys).toEqual(dk.keys);
    expect(got.signatures).toEqual(dk.signatures);
    expect(got.unsigned.device_display_name).toBe('Alice phone');
    expect(q.body.failures).toEqual({});

    // Asking for a named device; unknown devices and users are just absent.
    const q2 = await as(bob).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: ['NOSUCH'], [`@nobody:${server().serverName}`]: [] } });
    expect(q2.body.device_keys[alice.userId]).toEqual({});
    expect(q2.body.device_keys[`@nobody:${server().serverName}`] ?? {}).toEqual({});
  });

  it('reports remote servers in failures', async () => {
    const alice = await server().registerUser();
    const q = await as(alice).post(`${V3}/keys/query`, { device_keys: { '@bob:elsewhere.example': [] } });
    expect(q.status).toBe(200);
    expect(Object.keys(q.body.failures)).toEqual(['elsewhere.example']);
    const cl = await as(alice).post(`${V3}/keys/claim`, { one_time_keys: { '@bob:elsewhere.example': { DEV: 'signed_curve25519' } } });
    expect(cl.status).toBe(200);
    expect(Object.keys(cl.body.failures)).toEqual(['elsewhere.example']);
    const bad = await as(alice).post(`${V3}/keys/query`, { device_keys: { 'not-a-user': [] } });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const notList = await as(alice).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: 'DEV' } });
    expect(notList.status).toBe(400);
    const missing = await as(alice).post(`${V3}/keys/query`, {});
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('accepts the r0 /keys/upload/{deviceId} form for the requester\'s own device only', async () => {
    const alice = await server().registerUser();
    const key = deviceSigningKey(alice.deviceId);
    const body = { device_keys: deviceKeys(alice.userId, alice.deviceId, key) };
    const other = await as(alice).post(`/_matrix/client/r0/keys/upload/OTHERDEVICE`, body);
    expect(other.status).toBe(400);
    const r = await as(alice).post(`/_matrix/client/r0/keys/upload/${encodeURIComponent(alice.deviceId)}`, body);
    expect(r.status).toBe(200);
    const q = await as(alice).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(Object.keys(q.body.device_keys[alice.userId])).toEqual([alice.deviceId]);
  });

  it('rejects device keys for another user or device, and bad signatures', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const c = as(alice);
    const key = deviceSigningKey(alice.deviceId);

    const otherUser = deviceKeys(bob.userId, alice.deviceId, key);
    let r = await c.post(`${V3}/keys/upload`, { device_keys: otherUser });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');

    const otherDevice = deviceKeys(alice.userId, 'OTHERDEV', deviceSigningKey('OTHERDEV'));
    r = await c.post(`${V3}/keys/upload`, { device_keys: otherDevice });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');

    // Tampered after signing.
    const tampered = deviceKeys(alice.userId, alice.deviceId, key);
    tampered.algorithms = ['m.megolm.v1.aes-sha2'];
    r = await c.post(`${V3}/keys/upload`, { device_keys: tampered });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');

    // Signed by a different key than the one it names.
    const wrongKey = deviceKeys(alice.userId, alice.deviceId, deviceSigningKey(alice.deviceId));
    wrongKey.keys[`ed25519:${alice.deviceId}`] = key.publicKeyBase64;
    r = await c.post(`${V3}/keys/upload`, { device_keys: wrongKey });
    expect(r.status).toBe(400);

    // Missing the ed25519 key.
    const noEd = { user_id: alice.userId, device_id: alice.deviceId, algorithms: [], keys: {}, signatures: {} };
    r = await c.post(`${V3}/keys/upload`, { device_keys: noEd });
    expect(r.status).toBe(400);

    // Nothing was stored.
    const q = await c.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(q.body.device_keys[alice.userId]).toEqual({});
  });

  it('rejects bad one-time keys and conflicting re-uploads', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    const { key } = await uploadDeviceKeys(c, alice.userId, alice.deviceId);
    const otks = oneTimeKeys(alice.userId, alice.deviceId, key, 2, 'K');
    let r = await c.post(`${V3}/keys/upload`, { one_time_keys: otks });
    expect(r.body.one_time_key_counts.signed_curve25519).toBe(2);
    // Same ids and content again: idempotent.
    r = await c.post(`${V3}/keys/upload`, { one_time_keys: otks });
    expect(r.status).toBe(200);
    expect(r.body.one_time_key_counts.signed_curve25519).toBe(2);
    // Same id, different content.
    r = await c.post(`${V3}/keys/upload`, { one_time_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'K') });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');
    // Signed by another key.
    r = await c.post(`${V3}/keys/upload`, { one_time_keys: oneTimeKeys(alice.userId, alice.deviceId, deviceSigningKey(alice.deviceId), 1, 'X') });
    expect(r.status).toBe(400);
    // Not a key object.
    r = await c.post(`${V3}/keys/upload`, { one_time_keys: { 'signed_curve25519:Z': 'just a string' } });
    expect(r.status).toBe(400);
    r = await c.post(`${V3}/keys/upload`, { one_time_keys: { nocolon: { key: 'x', signatures: {} } } });
    expect(r.status).toBe(400);
    r = await c.post(`${V3}/keys/upload`, { one_time_keys: [] });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_BAD_JSON');
    r = await c.post(`${V3}/keys/upload`, {});
    expect(r.body.one_time_key_counts.signed_curve25519).toBe(2);
  });

  it('claims one-time keys in upload order, then the fallback key, marking it used', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const c = as(alice);
    const { key } = await uploadDeviceKeys(c, alice.userId, alice.deviceId);
    await c.post(`${V3}/keys/upload`, { one_time_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'first') });
    await new Promise((res) => setTimeout(res, 5));
    await c.post(`${V3}/keys/upload`, {
      one_time_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'second'),
      fallback_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'fb', true),
    });
    const claim = () => as(bob).post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } });
    const ids = [];
    for (let i = 0; i < 4; i++) {
      const r = await claim();
      expect(r.status).toBe(200);
      ids.push(Object.keys(r.body.one_time_keys[alice.userId][alice.deviceId])[0]);
    }
    expect(ids).toEqual(['signed_curve25519:first0', 'signed_curve25519:second0', 'signed_curve25519:fb0', 'signed_curve25519:fb0']);
    const counts = await c.post(`${V3}/keys/upload`, {});
    expect(counts.body.one_time_key_counts.signed_curve25519).toBe(0);
    // Unknown devices and users are absent, not errors.
    const r = await as(bob).post(`${V3}/keys/claim`, {
      one_time_keys: { [alice.userId]: { NOSUCH: 'signed_curve25519' }, [`@ghost:${server().serverName}`]: { X: 'signed_curve25519' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.one_time_keys).toEqual({});
    const bad = await as(bob).post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { D: 5 } } });
    expect(bad.status).toBe(400);
    const missing = await as(bob).post(`${V3}/keys/claim`, {});
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
  });

  it('never hands out a one-time key twice under concurrent claims', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const c = as(alice);
    const { key } = await uploadDeviceKeys(c, alice.userId, alice.deviceId, 10);
    await c.post(`${V3}/keys/upload`, { fallback_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'fallback', true) });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => as(bob).post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } })),
    );
    const ids = results.map((r) => {
      expect(r.status).toBe(200);
      return Object.keys(r.body.one_time_keys[alice.userId][alice.deviceId])[0]!;
    });
    const otkIds = ids.filter((id) => !id.includes('fallback'));
    expect(otkIds.length).toBe(10);
    expect(new Set(otkIds).size).toBe(10);
    expect(ids.filter((id) => id === 'signed_curve25519:fallback0').length).toBe(10);
  });

  it('replaces a fallback key with a new one (unused again)', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const c = as(alice);
    const { key } = await uploadDeviceKeys(c, alice.userId, alice.deviceId);
    await c.post(`${V3}/keys/upload`, { fallback_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'one', true) });
    await as(bob).post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } });
    await c.post(`${V3}/keys/upload`, { fallback_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'two', true) });
    const r = await as(bob).post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } });
    expect(Object.keys(r.body.one_time_keys[alice.userId][alice.deviceId])).toEqual(['signed_curve25519:two0']);
    // Two fallback keys for one algorithm are refused.
    const two = await c.post(`${V3}/keys/upload`, { fallback_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 2, 'x', true) });
    expect(two.status).toBe(400);
  });

  it('deleting a device removes its keys and reports a device-list change', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    // A second device for Alice via password login.
    const login = await new RawClient(server().baseUrl).post(`${V3}/login`, {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: alice.userId },
      password: alice.password,
    });
    expect(login.status).toBe(200);
    const dev2 = login.body.device_id as string;
    const c2 = new RawClient(server().baseUrl, login.body.access_token);
    await uploadDeviceKeys(c2, alice.userId, dev2, 3);
    const q1 = await c.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(Object.keys(q1.body.device_keys[alice.userId])).toContain(dev2);
    const before = await currentDeviceListToken(c);

    let del = await c.delete(`${V3}/devices/${encodeURIComponent(dev2)}`, {});
    if (del.status === 401) {
      del = await c.delete(`${V3}/devices/${encodeURIComponent(dev2)}`, {
        auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password, session: del.body.session },
      });
    }
    expect(del.status).toBe(200);
    const q2 = await c.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(Object.keys(q2.body.device_keys[alice.userId])).not.toContain(dev2);
    const cl = await c.post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { [dev2]: 'signed_curve25519' } } });
    expect(cl.body.one_time_keys).toEqual({});
    const ch = await c.get(`${V3}/keys/changes?from=${before}&to=${tokenAt(Number.MAX_SAFE_INTEGER)}`);
    expect(ch.status).toBe(200);
    expect(ch.body.changed).toContain(alice.userId);
  });

  it('/keys/changes reports own key uploads in range and validates tokens', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    const before = await currentDeviceListToken(c);
    await uploadDeviceKeys(c, alice.userId, alice.deviceId);
    const ch = await c.get(`${V3}/keys/changes?from=${before}&to=${tokenAt(Number.MAX_SAFE_INTEGER)}`);
    expect(ch.status).toBe(200);
    expect(ch.body.changed).toContain(alice.userId);
    expect(ch.body.left).toEqual([]);
    // Nothing after now.
    const after = await currentDeviceListToken(c);
    const ch2 = await c.get(`${V3}/keys/changes?from=${after}&to=${tokenAt(Number.MAX_SAFE_INTEGER)}`);
    expect(ch2.body.changed).toEqual([]);
    const bad = await c.get(`${V3}/keys/changes?from=garbage&to=${after}`);
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const missing = await c.get(`${V3}/keys/changes`);
    expect(missing.status).toBe(400);
  });
});

/** A sync token at device_lists position `p` (events at `events`). */
export function tokenAt(p: number, events = 0): string {
  // s1_<events>_<typing>_<receipts>_<presence>_<account_data>_<to_device>_<device_lists>_<push_rules>
  return `s1_${events}_0_0_0_0_0_${p}_0`;
}

/**
 * A token at the current device_lists position: /sync's next_batch when
 * /sync exists, else found by bisecting /keys/changes for the first position
 * after which nothing visible to the user changed.
 */
async function currentDeviceListToken(c: RawClient): Promise<string> {
  const s = await c.get('/_matrix/client/v3/sync?timeout=0');
  if (s.status === 200 && typeof s.body.next_batch === 'string') return s.body.next_batch;
  // Without /sync: the first position with no change for anyone visible is found by search.
  const changedFrom = async (p: number) =>
    ((await c.get(`/_matrix/client/v3/keys/changes?from=${tokenAt(p)}&to=${tokenAt(Number.MAX_SAFE_INTEGER)}`)).body.changed ?? []).length > 0;
  if (!(await changedFrom(0))) return tokenAt(0);
  let lo = 0;
  let hi = 1;
  while (await changedFrom(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await changedFrom(mid)) lo = mid;
    else hi = mid;
  }
  return tokenAt(hi);
}
