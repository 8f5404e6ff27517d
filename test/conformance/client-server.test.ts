/**
 * Schema conformance of the client-server API: every response (success and
 * error) of the endpoints below is validated against the OpenAPI definitions
 * in test/fixtures/matrix-spec/data/api/client-server, and every event inside with
 * an event schema against event-schemas/. Each test asserts the expected
 * status codes too, so an endpoint answering 404 cannot pass as "an error body
 * that conforms".
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../helpers/homeserver.js';
import { RawClient, enc } from '../helpers/http.js';
import { generateSigningKey, signJson } from '../../src/matrix/signing.js';
import { ConformClient } from './client.js';

const V3 = '/_matrix/client/v3';
const V1 = '/_matrix/client/v1';

describeShapes('client-server schema conformance', (server) => {
  let c: ConformClient; // anonymous
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  let A: ConformClient;
  let B: ConformClient;
  let C: ConformClient;
  let roomId: string;
  let msgId: string;

  /** Asserts that the calls made since `start` produced no violations. */
  const noViolations = (start: number) => {
    const v = c.violations.slice(start);
    expect(v, '\n' + v.join('\n') + '\n').toEqual([]);
  };
  const mark = () => c.violations.length;

  beforeAll(async () => {
    c = new ConformClient(new RawClient(server().baseUrl));
    [alice, bob, carol] = await Promise.all([server().registerUser(), server().registerUser(), server().registerUser()]);
    A = c.as(alice.accessToken);
    B = c.as(bob.accessToken);
    C = c.as(carol.accessToken);
  });

  afterAll(() => {
    // A compact coverage line helps when reading CI output.
    if (process.env.MYELIN_CONFORMANCE_VERBOSE) console.log([...c.covered].sort().join('\n') + '\n' + [...c.eventTypesChecked].sort().join(' '));
    console.log(`[conformance ${server().shape}] ${c.covered.size} operation/status pairs, ${c.eventsChecked} events of ${c.eventTypesChecked.size} types checked; ${c.violations.length} violations`);
  });

  it('discovery: /versions, /capabilities, /login GET, /register GET, well-known', async () => {
    const m = mark();
    await c.get('/_matrix/client/versions');
    await A.get(`${V3}/capabilities`);
    await c.get(`${V3}/capabilities`, { status: 401, errcode: 'M_MISSING_TOKEN' });
    await c.get(`${V3}/capabilities`, { status: 401, errcode: 'M_UNKNOWN_TOKEN', token: 'nope' });
    await c.get(`${V3}/login`);
    await c.get('/.well-known/matrix/client');
    noViolations(m);
  });

  it('registration: UIA 401 body, available, success, errors', async () => {
    const m = mark();
    const name = `conf${Date.now().toString(36)}`;
    const first = await c.post(`${V3}/register`, { username: name, password: 'pw-conformance-1' }, { status: 401 });
    expect(first.body.session).toBeTypeOf('string');
    await c.post(`${V3}/register`, { username: name, password: 'pw-conformance-1', auth: { type: 'm.login.dummy', session: first.body.session } });
    await c.get(`${V3}/register/available?username=${name}`, { status: 400, errcode: 'M_USER_IN_USE' });
    await c.get(`${V3}/register/available?username=free${name}`);
    await c.get(`${V3}/register/available?username=${enc('Bad Name!')}`, { status: 400, errcode: 'M_INVALID_USERNAME' });
    await c.post(`${V3}/register`, { username: name, password: 'x', auth: { type: 'm.login.dummy' } }, { status: 400, errcode: 'M_USER_IN_USE' });
    const guest = await c.post(`${V3}/register?kind=guest`, {});
    await c.as(guest.body.access_token).get(`${V3}/account/whoami`);
    await c.post(`${V3}/register`, { username: `inh${name}`, password: 'pw-conformance-2', inhibit_login: true, auth: { type: 'm.login.dummy' } });
    noViolations(m);
  });

  it('login, refresh, whoami, logout', async () => {
    const m = mark();
    const u = await server().registerUser();
    const login = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: u.password, refresh_token: true });
    await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: 'wrong' }, { status: 403, errcode: 'M_FORBIDDEN' });
    await c.post(`${V3}/login`, { type: 'm.login.bogus' }, { status: 400 });
    const rt = login.body.refresh_token;
    expect(rt).toBeTypeOf('string');
    const refreshed = await c.post(`${V3}/refresh`, { refresh_token: rt });
    await c.post(`${V3}/refresh`, { refresh_token: 'not-a-token' }, { status: 401, errcode: 'M_UNKNOWN_TOKEN' });
    const U = c.as(refreshed.body.access_token);
    await U.get(`${V3}/account/whoami`);
    await U.post(`${V3}/logout`);
    await U.get(`${V3}/account/whoami`, { status: 401, errcode: 'M_UNKNOWN_TOKEN' });
    const again = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: u.password });
    await c.as(again.body.access_token).post(`${V3}/logout/all`);
    noViolations(m);
  });

  it('devices', async () => {
    const m = mark();
    await A.get(`${V3}/devices`);
    await A.get(`${V3}/devices/${enc(alice.deviceId)}`);
    await A.get(`${V3}/devices/NOSUCHDEVICE`, { status: 404, errcode: 'M_NOT_FOUND' });
    await A.put(`${V3}/devices/${enc(alice.deviceId)}`, { display_name: 'conformance' });
    const login = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.localpart }, password: alice.password });
    const del = await A.delete(`${V3}/devices/${enc(login.body.device_id)}`, {}, { status: 401 });
    await A.delete(`${V3}/devices/${enc(login.body.device_id)}`, { auth: { type: 'm.login.password', session: del.body.session, identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password } });
    noViolations(m);
  });

  it('profile and filters', async () => {
    const m = mark();
    await A.put(`${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: 'Alice' });
    await A.put(`${V3}/profile/${enc(alice.userId)}/avatar_url`, { avatar_url: 'mxc://example.org/abc' });
    await A.get(`${V3}/profile/${enc(alice.userId)}`);
    await A.get(`${V3}/profile/${enc(alice.userId)}/displayname`);
    await A.get(`${V3}/profile/${enc(alice.userId)}/avatar_url`);
    await A.get(`${V3}/profile/${enc('@nobody:' + server().serverName)}`, { status: 404, errcode: 'M_NOT_FOUND' });
    await B.put(`${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: 'Mallory' }, { status: 403, errcode: 'M_FORBIDDEN' });
    const f = await A.post(`${V3}/user/${enc(alice.userId)}/filter`, { room: { timeline: { limit: 10 } }, event_fields: ['type', 'content'] });
    await A.get(`${V3}/user/${enc(alice.userId)}/filter/${enc(f.body.filter_id)}`);
    await A.get(`${V3}/user/${enc(alice.userId)}/filter/999999`, { status: 404, errcode: 'M_NOT_FOUND' });
    noViolations(m);
  });

  it('rooms: create, membership, send, state, events', async () => {
    const m = mark();
    const alias = `conf${Date.now().toString(36)}`;
    const created = await A.post(`${V3}/createRoom`, { name: 'Conformance', topic: 'schemas', room_alias_name: alias, preset: 'public_chat', visibility: 'public' });
    roomId = created.body.room_id;
    await A.post(`${V3}/createRoom`, { room_alias_name: alias }, { status: 400, errcode: 'M_ROOM_IN_USE' });
    await A.post(`${V3}/createRoom`, { room_version: 'nope' }, { status: 400, errcode: 'M_UNSUPPORTED_ROOM_VERSION' });
    const fullAlias = `#${alias}:${server().serverName}`;
    await A.get(`${V3}/directory/room/${enc(fullAlias)}`);
    await A.get(`${V3}/directory/room/${enc('#missing:' + server().serverName)}`, { status: 404, errcode: 'M_NOT_FOUND' });
    await A.put(`${V3}/directory/room/${enc('#second' + alias + ':' + server().serverName)}`, { room_id: roomId });
    await A.get(`${V3}/rooms/${enc(roomId)}/aliases`);
    await A.delete(`${V3}/directory/room/${enc('#second' + alias + ':' + server().serverName)}`);
    await c.get(`${V3}/publicRooms`);
    await A.post(`${V3}/publicRooms`, { limit: 5, filter: { generic_search_term: 'Conf' } });
    await A.get(`${V3}/directory/list/room/${enc(roomId)}`);

    await B.post(`${V3}/join/${enc(fullAlias)}`);
    await C.post(`${V3}/rooms/${enc(roomId)}/join`);
    await B.post(`${V3}/join/${enc('!nowhere:' + server().serverName)}`, {}, { status: 404, errcode: 'M_NOT_FOUND' });
    const sent = await A.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'hello' });
    msgId = sent.body.event_id;
    await B.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/t2`, { msgtype: 'm.emote', body: 'waves' });
    await A.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/t3`, { msgtype: 'm.notice', body: 'notice', format: 'org.matrix.custom.html', formatted_body: '<b>notice</b>' });
    await A.put(`${V3}/rooms/${enc(roomId)}/state/m.room.topic`, { topic: 'new topic' });
    await A.put(`${V3}/rooms/${enc(roomId)}/state/m.room.name/`, { name: 'Renamed' });
    await B.put(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels`, { users: {} }, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.get(`${V3}/rooms/${enc(roomId)}/state`);
    await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.topic`);
    await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`);
    await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.nothing/`, { status: 404, errcode: 'M_NOT_FOUND' });
    await A.get(`${V3}/rooms/${enc(roomId)}/event/${enc(msgId)}`);
    await A.get(`${V3}/rooms/${enc(roomId)}/event/${enc('$nope')}`, { status: 404, errcode: 'M_NOT_FOUND' });
    await A.get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=20`);
    await A.get(`${V3}/rooms/${enc(roomId)}/messages?dir=x`, { status: 400 });
    await A.get(`${V3}/rooms/${enc(roomId)}/context/${enc(msgId)}?limit=3`);
    await A.get(`${V3}/rooms/${enc(roomId)}/members`);
    await A.get(`${V3}/rooms/${enc(roomId)}/joined_members`);
    await A.get(`${V3}/joined_rooms`);
    const outsider = await server().registerUser();
    await c.as(outsider.accessToken).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b`, { status: 403, errcode: 'M_FORBIDDEN' });
    await c.as(outsider.accessToken).get(`${V3}/rooms/${enc(roomId)}/members`, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.put(`${V3}/rooms/${enc(roomId)}/redact/${enc(msgId)}/r1`, { reason: 'test' });
    noViolations(m);
  });

  it('invite, kick, ban, leave; /sync initial and incremental with join/invite/leave rooms', async () => {
    const m = mark();
    // Carol syncs first so that the incremental sync sees invite + leave.
    const initial = await C.get(`${V3}/sync?timeout=0`);
    const priv = await A.post(`${V3}/createRoom`, { preset: 'private_chat', invite: [carol.userId], name: 'Private' });
    const privId = priv.body.room_id;
    await A.post(`${V3}/rooms/${enc(privId)}/invite`, { user_id: bob.userId });
    await A.post(`${V3}/rooms/${enc(privId)}/invite`, { user_id: alice.userId }, { status: 403, errcode: 'M_FORBIDDEN' });
    await B.post(`${V3}/rooms/${enc(privId)}/invite`, { user_id: carol.userId }, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.post(`${V3}/rooms/${enc(roomId)}/kick`, { user_id: carol.userId, reason: 'testing' });
    await B.post(`${V3}/rooms/${enc(roomId)}/kick`, { user_id: alice.userId }, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.post(`${V3}/rooms/${enc(roomId)}/ban`, { user_id: carol.userId });
    await A.post(`${V3}/rooms/${enc(roomId)}/unban`, { user_id: carol.userId });
    await A.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 10000 });
    await A.post(`${V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(msgId)}`, {});
    await A.post(`${V3}/rooms/${enc(roomId)}/read_markers`, { 'm.fully_read': msgId, 'm.read': msgId });
    const inc = await C.get(`${V3}/sync?timeout=0&since=${enc(initial.body.next_batch)}`);
    expect(Object.keys(inc.body.rooms?.invite ?? {})).toContain(privId);
    expect(Object.keys(inc.body.rooms?.leave ?? {})).toContain(roomId);
    const full = await A.get(`${V3}/sync?timeout=0&full_state=true`);
    expect(Object.keys(full.body.rooms?.join ?? {})).toContain(roomId);
    await A.get(`${V3}/sync?timeout=0&since=${enc(full.body.next_batch)}`);
    await A.get(`${V3}/sync?timeout=0&filter=${enc(JSON.stringify({ room: { timeline: { limit: 1 } } }))}`);
    await A.get(`${V3}/sync?filter=999999`, { status: 400 });
    await C.post(`${V3}/rooms/${enc(privId)}/leave`);
    await C.post(`${V3}/rooms/${enc(privId)}/forget`);
    const afterLeave = await C.get(`${V3}/sync?timeout=0&since=${enc(inc.body.next_batch)}`);
    expect(afterLeave.status).toBe(200);
    await A.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true }, { status: 403, errcode: 'M_FORBIDDEN' });
    expect(c.eventTypesChecked.has('m.room.member')).toBe(true);
    expect(c.eventTypesChecked.has('m.room.create')).toBe(true);
    expect(c.eventTypesChecked.has('m.room.power_levels')).toBe(true);
    noViolations(m);
  });

  it('account data, tags, to-device, presence', async () => {
    const m = mark();
    await A.put(`${V3}/user/${enc(alice.userId)}/account_data/org.example.conf`, { a: 1 });
    await A.get(`${V3}/user/${enc(alice.userId)}/account_data/org.example.conf`);
    await A.get(`${V3}/user/${enc(alice.userId)}/account_data/org.example.missing`, { status: 404, errcode: 'M_NOT_FOUND' });
    await B.get(`${V3}/user/${enc(alice.userId)}/account_data/org.example.conf`, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.put(`${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/org.example.room`, { b: 2 });
    await A.get(`${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/org.example.room`);
    await A.put(`${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags/m.favourite`, { order: 0.5 });
    await A.get(`${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags`);
    await A.delete(`${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags/m.favourite`);
    await A.put(`${V3}/sendToDevice/org.example.ping/td1`, { messages: { [bob.userId]: { [bob.deviceId]: { hello: 'world' } } } });
    await A.put(`${V3}/presence/${enc(alice.userId)}/status`, { presence: 'online', status_msg: 'testing' });
    await A.get(`${V3}/presence/${enc(alice.userId)}/status`);
    await A.put(`${V3}/presence/${enc(bob.userId)}/status`, { presence: 'online' }, { status: 403, errcode: 'M_FORBIDDEN' });
    const s = await B.get(`${V3}/sync?timeout=0`);
    expect(s.body.to_device?.events?.length ?? 0).toBeGreaterThan(0);
    noViolations(m);
  });

  it('push rules and notifications', async () => {
    const m = mark();
    await A.get(`${V3}/pushrules/`);
    await A.get(`${V3}/pushrules/global/`);
    await A.put(`${V3}/pushrules/global/content/conf`, { pattern: 'conformance', actions: ['notify'] });
    await A.get(`${V3}/pushrules/global/content/conf`);
    await A.get(`${V3}/pushrules/global/content/conf/enabled`);
    await A.put(`${V3}/pushrules/global/content/conf/enabled`, { enabled: false });
    await A.get(`${V3}/pushrules/global/content/conf/actions`);
    await A.put(`${V3}/pushrules/global/content/conf/actions`, { actions: [] });
    await A.delete(`${V3}/pushrules/global/content/conf`);
    await A.get(`${V3}/pushrules/global/content/nope`, { status: 404, errcode: 'M_NOT_FOUND' });
    await B.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/pn1`, { msgtype: 'm.text', body: 'ping alice' });
    await A.get(`${V3}/notifications`);
    noViolations(m);
  });

  it('E2EE keys and key backup', async () => {
    const m = mark();
    // Real Ed25519 signatures: the server verifies device and one-time keys.
    const key = generateSigningKey(alice.deviceId);
    const dk = signJson(
      {
        user_id: alice.userId,
        device_id: alice.deviceId,
        algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
        keys: { [`curve25519:${alice.deviceId}`]: 'Y3VydmVrZXlZM1Z5ZG1WclpYaw', [`ed25519:${alice.deviceId}`]: key.publicKeyBase64 },
      },
      alice.userId,
      key,
    );
    const otk = signJson({ key: 'a2V5a2V5a2V5a2V5a2V5a2V5a2V5' }, alice.userId, key);
    await A.post(`${V3}/keys/upload`, { device_keys: dk, one_time_keys: { 'signed_curve25519:AAAAAQ': otk } });
    await B.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    await B.post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } });
    const s = await B.get(`${V3}/sync?timeout=0`);
    await B.get(`${V3}/keys/changes?from=${enc(s.body.next_batch)}&to=${enc(s.body.next_batch)}`);
    await A.get(`${V3}/room_keys/version`, { status: 404, errcode: 'M_NOT_FOUND' });
    const v = await A.post(`${V3}/room_keys/version`, { algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', auth_data: { public_key: 'cHVia2V5', signatures: {} } });
    await A.get(`${V3}/room_keys/version`);
    await A.get(`${V3}/room_keys/version/${enc(v.body.version)}`);
    noViolations(m);
  });

  it('relations, user directory, turn server', async () => {
    const m = mark();
    const reply = await A.put(`${V3}/rooms/${enc(roomId)}/send/m.reaction/re1`, { 'm.relates_to': { rel_type: 'm.annotation', event_id: msgId, key: '👍' } });
    expect(reply.status).toBe(200);
    const thr = await A.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/th0`, { msgtype: 'm.text', body: 'root' });
    await A.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/th1`, { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: thr.body.event_id } });
    await A.get(`${V1}/rooms/${enc(roomId)}/relations/${enc(thr.body.event_id)}`);
    await A.get(`${V1}/rooms/${enc(roomId)}/relations/${enc(thr.body.event_id)}/m.thread`);
    await A.get(`${V1}/rooms/${enc(roomId)}/threads`);
    await A.post(`${V3}/user_directory/search`, { search_term: 'alice', limit: 5 });
    await A.get(`${V3}/voip/turnServer`);
    noViolations(m);
  });

  it('more account, room and sync surfaces', async () => {
    const m = mark();
    // Tag + presence visible in /sync (m.tag, m.presence events checked).
    await A.put(`${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags/u.work`, { order: 0.25 });
    await B.put(`${V3}/presence/${enc(bob.userId)}/status`, { presence: 'unavailable', status_msg: 'away' });
    const s = await A.get(`${V3}/sync?timeout=0`);
    expect(s.body.rooms.join[roomId].account_data.events.some((e: any) => e.type === 'm.tag')).toBe(true);
    await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.create/`);
    await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels`);
    await A.put(`${V3}/directory/list/room/${enc(roomId)}`, { visibility: 'private' });
    await A.get(`${V3}/rooms/${enc(roomId)}/messages?dir=f&limit=5&filter=${enc(JSON.stringify({ types: ['m.room.message'] }))}`);
    await A.get(`${V3}/rooms/${enc(roomId)}/context/${enc('$missing')}`, { status: 404, errcode: 'M_NOT_FOUND' });
    await c.as(carol.accessToken).get(`${V3}/rooms/${enc(roomId)}/joined_members`, { status: 403, errcode: 'M_FORBIDDEN' });
    await B.post(`${V3}/rooms/${enc(roomId)}/ban`, { user_id: alice.userId }, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.get(`${V3}/account/3pid`);
    await A.put(`${V3}/pushrules/global/bogus/x`, { actions: [] }, { status: 400 });
    const u = await server().registerUser();
    const U = c.as(u.accessToken);
    const pw = await U.post(`${V3}/account/password`, { new_password: 'new-password-1' }, { status: 401 });
    await U.post(`${V3}/account/password`, { new_password: 'new-password-1', auth: { type: 'm.login.password', session: pw.body.session, identifier: { type: 'm.id.user', user: u.userId }, password: u.password } });
    const login = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: 'new-password-1' });
    const dd = await U.post(`${V3}/delete_devices`, { devices: [login.body.device_id] }, { status: 401 });
    await U.post(`${V3}/delete_devices`, { devices: [login.body.device_id], auth: { type: 'm.login.password', session: dd.body.session, identifier: { type: 'm.id.user', user: u.userId }, password: 'new-password-1' } });
    const da = await U.post(`${V3}/account/deactivate`, {}, { status: 401 });
    await U.post(`${V3}/account/deactivate`, { auth: { type: 'm.login.password', session: da.body.session, identifier: { type: 'm.id.user', user: u.userId }, password: 'new-password-1' } });
    noViolations(m);
  });

  it('cross-signing, key backup keys', async () => {
    const m = mark();
    const master = generateSigningKey('master');
    const mk = { user_id: alice.userId, usage: ['master'], keys: { [`ed25519:${master.publicKeyBase64}`]: master.publicKeyBase64 } };
    const self = generateSigningKey('self');
    const sk = signJson({ user_id: alice.userId, usage: ['self_signing'], keys: { [`ed25519:${self.publicKeyBase64}`]: self.publicKeyBase64 } }, alice.userId, { ...master, keyId: `ed25519:${master.publicKeyBase64}` });
    // The first upload (no master key yet) may skip user-interactive auth (spec v1.11).
    await A.post(`${V3}/keys/device_signing/upload`, { master_key: mk, self_signing_key: sk });
    // Replacing it needs it.
    const again = await A.post(`${V3}/keys/device_signing/upload`, { master_key: { ...mk, keys: { [`ed25519:${self.publicKeyBase64}`]: self.publicKeyBase64 } } }, { status: 401 });
    expect(again.body.flows?.length ?? 0).toBeGreaterThan(0);
    await B.post(`${V3}/keys/query`, { device_keys: { [alice.userId]: [] } });
    await A.post(`${V3}/keys/signatures/upload`, {});
    const v = await A.get(`${V3}/room_keys/version`);
    const session = { first_message_index: 0, forwarded_count: 0, is_verified: true, session_data: { ephemeral: 'ZQ', ciphertext: 'Yw', mac: 'bQ' } };
    await A.put(`${V3}/room_keys/keys/${enc(roomId)}?version=${enc(v.body.version)}`, { sessions: { sess1: session } });
    await A.get(`${V3}/room_keys/keys?version=${enc(v.body.version)}`);
    await A.get(`${V3}/room_keys/keys/${enc(roomId)}?version=${enc(v.body.version)}`);
    await A.get(`${V3}/room_keys/keys/${enc(roomId)}/sess1?version=${enc(v.body.version)}`);
    await A.put(`${V3}/room_keys/keys/${enc(roomId)}?version=999`, { sessions: { sess1: session } }, { status: 403, errcode: 'M_WRONG_ROOM_KEYS_VERSION' });
    await A.delete(`${V3}/room_keys/keys/${enc(roomId)}?version=${enc(v.body.version)}`);
    noViolations(m);
  });

  it('search, hierarchy, summary, upgrade, timestamp_to_event, report', async () => {
    const m = mark();
    await A.post(`${V3}/search`, { search_categories: { room_events: { search_term: 'hello' } } });
    await A.get(`${V1}/rooms/${enc(roomId)}/hierarchy`);
    await A.get(`${V1}/room_summary/${enc(roomId)}`);
    await A.get(`${V1}/rooms/${enc(roomId)}/timestamp_to_event?ts=${Date.now()}&dir=b`);
    await A.post(`${V3}/rooms/${enc(roomId)}/report/${enc(msgId)}`, { reason: 'spam' });
    const up = await A.post(`${V3}/createRoom`, { name: 'to upgrade' });
    await A.post(`${V3}/rooms/${enc(up.body.room_id)}/upgrade`, { new_version: '10' });
    noViolations(m);
  });

  it('knocking, legacy /events and /initialSync, members filters, public room pagination', async () => {
    const m = mark();
    const k = await A.post(`${V3}/createRoom`, { room_version: '10', initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] });
    const kid = k.body.room_id;
    await C.post(`${V3}/knock/${enc(kid)}`, { reason: 'let me in' });
    const cs = await C.get(`${V3}/sync?timeout=0`);
    expect(Object.keys(cs.body.rooms?.knock ?? {})).toContain(kid);
    await C.post(`${V3}/knock/${enc(roomId)}`, {}, { status: 403, errcode: 'M_FORBIDDEN' });
    await A.get(`${V3}/rooms/${enc(kid)}/members?membership=knock`);
    await A.get(`${V3}/rooms/${enc(roomId)}/members?not_membership=leave`);
    const init = await A.get(`${V3}/initialSync?limit=2`);
    await A.get(`${V3}/events?timeout=0&from=${enc(init.body.end)}`);
    await A.get(`${V3}/rooms/${enc(roomId)}/initialSync?limit=3`);
    for (let i = 0; i < 3; i++) await A.post(`${V3}/createRoom`, { preset: 'public_chat', visibility: 'public', name: `pub ${i}` });
    const p1 = await A.get(`${V3}/publicRooms?limit=2`);
    expect(p1.body.next_batch).toBeTypeOf('string');
    await A.get(`${V3}/publicRooms?limit=2&since=${enc(p1.body.next_batch)}`);
    await A.post(`${V3}/rooms/${enc(roomId)}/report`, { reason: 'whole room' });
    noViolations(m);
  });

  it('lazy-loading filters, keys edge cases, notification filters', async () => {
    const m = mark();
    const ll = enc(JSON.stringify({ room: { state: { lazy_load_members: true }, timeline: { limit: 2, lazy_load_members: true } } }));
    const s1 = await B.get(`${V3}/sync?timeout=0&filter=${ll}&set_presence=offline`);
    const joined = s1.body.rooms.join[roomId];
    expect(joined).toBeDefined();
    await B.get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=3&filter=${enc(JSON.stringify({ lazy_load_members: true }))}`);
    if (joined.timeline.prev_batch) await B.get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&from=${enc(joined.timeline.prev_batch)}&limit=50`);
    await B.get(`${V3}/rooms/${enc(roomId)}/context/${enc(msgId)}?limit=2&filter=${enc(JSON.stringify({ lazy_load_members: true }))}`);
    await B.get(`${V3}/rooms/${enc(roomId)}/members?at=${enc(s1.body.next_batch)}`);
    await B.post(`${V3}/keys/query`, { device_keys: { [`@nobody:${server().serverName}`]: [], [alice.userId]: ['NOSUCHDEVICE'] } });
    await B.post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId]: { NOSUCHDEVICE: 'signed_curve25519' }, '@x:unreachable.invalid': { D: 'signed_curve25519' } } });
    await A.get(`${V3}/notifications?only=highlight&limit=1`);
    const fresh = await server().registerUser();
    await A.get(`${V3}/profile/${enc(fresh.userId)}`);
    const noAvatar = await A.get(`${V3}/profile/${enc(fresh.userId)}/avatar_url`, { status: 404, errcode: 'M_NOT_FOUND' });
    expect(noAvatar.body.avatar_url).toBeUndefined();
    await A.get(`${V3}/publicRooms?server=${enc(server().serverName)}`);
    noViolations(m);
  });

  it('generic errors conform: bad JSON, unknown endpoint', async () => {
    const m = mark();
    await A.call('POST', `${V3}/createRoom`, undefined, { raw: '{not json', status: 400, errcode: 'M_NOT_JSON' });
    await A.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/bad1`, [1, 2], { status: 400, errcode: 'M_BAD_JSON' });
    noViolations(m);
  });
}, { config: { public_baseurl: 'https://matrix.example.org/', allow_guest_access: true, turn_uris: ['turn:turn.example.org:3478?transport=udp'], turn_shared_secret: 'conformance-secret' } });
