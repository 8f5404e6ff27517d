import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';
import { crossSigningKeys, signAs, uploadDeviceKeys } from './keys-helpers.js';

const V3 = '/_matrix/client/v3';

describeShapes('e2ee: cross-signing', (server) => {
  const as = (u: RegisteredUser) => new RawClient(server().baseUrl, u.accessToken);
  const passwordAuth = (u: RegisteredUser, session?: string) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: u.userId },
    password: u.password,
    ...(session ? { session } : {}),
  });

  it('uploads the first keys without UIA, re-uploads the same keys without UIA, needs UIA to replace them', async () => {
    const alice = await server().registerUser();
    const c = as(alice);
    const cs = crossSigningKeys(alice.userId);
    let r = await c.post(`${V3}/keys/device_signing/upload`, cs.body);
    expect(r.status).toBe(200);
    r = await c.post(`${V3}/keys/device_signing/upload`, cs.body);
    expect(r.status).toBe(200);

    const cs2 = crossSigningKeys(alice.userId);
    r = await c.post(`${V3}/keys/device_signing/upload`, cs2.body);
    expect(r.status).toBe(401);
    expect(r.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const session = r.body.session;
    const wrong = await c.post(`${V3}/keys/device_signing/upload`, { ...cs2.body, auth: { ...passwordAuth(alice, session), password: 'nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    // Still the old key.
    let q = await c.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(q.body.master_keys[alice.userId].keys).toEqual(cs.body.master_key.keys);
    r = await c.post(`${V3}/keys/device_signing/upload`, { ...cs2.body, auth: passwordAuth(alice, session) });
    expect(r.status).toBe(200);
    q = await c.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(q.body.master_keys[alice.userId].keys).toEqual(cs2.body.master_key.keys);
  });

  it('shows master and self-signing keys to everyone, the user-signing key only to its owner', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const cs = crossSigningKeys(alice.userId);
    expect((await as(alice).post(`${V3}/keys/device_signing/upload`, cs.body)).status).toBe(200);
    const own = await as(alice).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(own.body.master_keys[alice.userId]).toEqual(cs.body.master_key);
    expect(own.body.self_signing_keys[alice.userId]).toEqual(cs.body.self_signing_key);
    expect(own.body.user_signing_keys[alice.userId]).toEqual(cs.body.user_signing_key);
    const other = await as(bob).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(other.body.master_keys[alice.userId]).toEqual(cs.body.master_key);
    expect(other.body.self_signing_keys[alice.userId]).toEqual(cs.body.self_signing_key);
    expect(other.body.user_signing_keys?.[alice.userId]).toBeUndefined();
  });

  it('rejects badly signed or malformed cross-signing keys', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const c = as(alice);
    const cs = crossSigningKeys(alice.userId);
    const other = crossSigningKeys(alice.userId);

    // A self-signing key without any master key.
    let r = await c.post(`${V3}/keys/device_signing/upload`, { self_signing_key: cs.body.self_signing_key });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_MISSING_PARAM');

    // Self-signing key signed by a different master key.
    r = await c.post(`${V3}/keys/device_signing/upload`, { master_key: cs.body.master_key, self_signing_key: other.body.self_signing_key });
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_SIGNATURE');

    // Keys for another user.
    const bobs = crossSigningKeys(bob.userId);
    r = await c.post(`${V3}/keys/device_signing/upload`, bobs.body);
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');

    // Wrong usage; key id not naming the key.
    r = await c.post(`${V3}/keys/device_signing/upload`, { master_key: { ...cs.body.master_key, usage: ['self_signing'] } });
    expect(r.status).toBe(400);
    r = await c.post(`${V3}/keys/device_signing/upload`, { master_key: { ...cs.body.master_key, keys: { 'ed25519:abc': 'def' } } });
    expect(r.status).toBe(400);

    // A public key equal to a device id.
    const pub = cs.master.publicKeyBase64;
    const login = await new RawClient(server().baseUrl).post(`${V3}/login`, { ...{ type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password }, device_id: pub });
    expect(login.status).toBe(200);
    r = await c.post(`${V3}/keys/device_signing/upload`, { master_key: cs.body.master_key });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');

    const q = await c.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    expect(q.body.master_keys[alice.userId]).toBeUndefined();
  });

  it('accepts valid signatures, merges them into /keys/query, reports per-key failures', async () => {
    const alice = await server().registerUser();
    const bob = await server().registerUser();
    const carol = await server().registerUser();
    const ca = as(alice);
    const { key: devKey, deviceKeys: dk } = await uploadDeviceKeys(ca, alice.userId, alice.deviceId);
    const cs = crossSigningKeys(alice.userId);
    expect((await ca.post(`${V3}/keys/device_signing/upload`, cs.body)).status).toBe(200);
    const bcs = crossSigningKeys(bob.userId);
    expect((await as(bob).post(`${V3}/keys/device_signing/upload`, bcs.body)).status).toBe(200);

    const { signatures: _s, ...unsignedDevice } = dk;
    const deviceSignedBySsk = signAs(unsignedDevice, alice.userId, cs.ssk, cs.ssk.publicKeyBase64);
    const masterSignedByDevice = signAs(cs.body.master_key, alice.userId, devKey, alice.deviceId);
    const bobMasterSignedByUsk = signAs(bcs.body.master_key, alice.userId, cs.usk, cs.usk.publicKeyBase64);
    const forgedDevice = signAs(unsignedDevice, alice.userId, cs.usk, cs.ssk.publicKeyBase64); // wrong key, ssk's name
    const r = await ca.post(`${V3}/keys/signatures/upload`, {
      [alice.userId]: {
        [alice.deviceId]: deviceSignedBySsk,
        [cs.master.publicKeyBase64]: masterSignedByDevice,
        NOSUCHDEVICE: { ...deviceSignedBySsk, device_id: 'NOSUCHDEVICE' },
      },
      [bob.userId]: { [bcs.master.publicKeyBase64]: bobMasterSignedByUsk },
    });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.failures)).toEqual([alice.userId]);
    expect(Object.keys(r.body.failures[alice.userId])).toEqual(['NOSUCHDEVICE']);

    const bad = await ca.post(`${V3}/keys/signatures/upload`, {
      [alice.userId]: { [alice.deviceId]: forgedDevice },
      [bob.userId]: { [bcs.master.publicKeyBase64]: { ...bobMasterSignedByUsk, usage: ['master', 'extra'] } },
    });
    expect(bad.status).toBe(200);
    expect(bad.body.failures[alice.userId][alice.deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    expect(bad.body.failures[bob.userId][bcs.master.publicKeyBase64].errcode).toBe('M_INVALID_PARAM');

    // Everyone sees Alice's device signed by her self-signing key and her master key signed by her device.
    const q = await as(carol).post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [], [bob.userId]: [] } });
    const sigs = q.body.device_keys[alice.userId][alice.deviceId].signatures[alice.userId];
    expect(sigs[`ed25519:${cs.ssk.publicKeyBase64}`]).toBe(deviceSignedBySsk.signatures[alice.userId][`ed25519:${cs.ssk.publicKeyBase64}`]);
    expect(sigs[`ed25519:${alice.deviceId}`]).toBe(dk.signatures[alice.userId][`ed25519:${alice.deviceId}`]);
    expect(q.body.master_keys[alice.userId].signatures[alice.userId][`ed25519:${alice.deviceId}`]).toBeDefined();
    // Alice's signature on Bob's master key is hers to see, not Carol's.
    expect(q.body.master_keys[bob.userId].signatures?.[alice.userId]).toBeUndefined();
    const qa = await ca.post(`${V3}/keys/query`, { device_keys: { [bob.userId]: [] } });
    expect(qa.body.master_keys[bob.userId].signatures[alice.userId][`ed25519:${cs.usk.publicKeyBase64}`]).toBe(
      bobMasterSignedByUsk.signatures[alice.userId][`ed25519:${cs.usk.publicKeyBase64}`],
    );
  });
});
