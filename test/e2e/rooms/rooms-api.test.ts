import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';

describeShapes('rooms: create, send, state, membership', (server) => {
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  const c = (u?: RegisteredUser) => new RawClient(server().baseUrl, u?.accessToken);
  let txn = 0;
  const send = (u: RegisteredUser, roomId: string, body: Record<string, unknown>, type = 'm.room.message') =>
    c(u).put(`${V3}/rooms/${enc(roomId)}/send/${enc(type)}/t${++txn}`, body);
  const createRoom = async (u: RegisteredUser, body: Record<string, unknown> = {}) => {
    const r = await c(u).post(`${V3}/createRoom`, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.room_id as string;
  };

  it('registers users', async () => {
    alice = await server().registerUser();
    bob = await server().registerUser();
    carol = await server().registerUser();
    await c(alice).put(`${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: 'Alice A' });
  });

  it('creates a room with the preset state in the spec order', async () => {
    const roomId = await createRoom(alice, { name: 'Test room', topic: 'about things', preset: 'public_chat', room_alias_name: `pub${Date.now()}` });
    expect(roomId).toMatch(new RegExp(`^!.+:${server().serverName.replace(/\./g, '\\.')}$`));
    const state = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state`);
    expect(state.status).toBe(200);
    const types = (state.body as any[]).map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(['m.room.create', 'm.room.member', 'm.room.power_levels', 'm.room.canonical_alias']);
    const byType = Object.fromEntries((state.body as any[]).map((e) => [e.type, e]));
    expect(byType['m.room.join_rules'].content).toEqual({ join_rule: 'public' });
    expect(byType['m.room.history_visibility'].content).toEqual({ history_visibility: 'shared' });
    expect(byType['m.room.name'].content).toEqual({ name: 'Test room' });
    expect(byType['m.room.topic'].content).toEqual({ topic: 'about things' });
    expect(byType['m.room.member'].content).toMatchObject({ membership: 'join', displayname: 'Alice A' });
    expect(byType['m.room.create'].content).toMatchObject({ room_version: '10', creator: alice.userId });
    expect(byType['m.room.power_levels'].content.users).toEqual({ [alice.userId]: 100 });
    // client format: no federation fields
    for (const e of state.body as any[]) {
      expect(e.hashes).toBeUndefined();
      expect(e.signatures).toBeUndefined();
      expect(e.auth_events).toBeUndefined();
      expect(e.prev_events).toBeUndefined();
      expect(e.depth).toBeUndefined();
      expect(typeof e.unsigned.age).toBe('number');
    }
  });

  it('rejects bad createRoom bodies', async () => {
    const v = await c(alice).post(`${V3}/createRoom`, { room_version: '999' });
    expect(v.status).toBe(400);
    expect(v.body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    const p = await c(alice).post(`${V3}/createRoom`, { preset: 'nope' });
    expect(p.status).toBe(400);
    const i = await c(alice).post(`${V3}/createRoom`, { invite: ['not-a-user'] });
    expect(i.status).toBe(400);
    const n = await c(alice).post(`${V3}/createRoom`, { name: 5 });
    expect(n.status).toBe(400);
    expect(n.body.errcode).toBe('M_BAD_JSON');
    const alias = `taken${Date.now()}`;
    await createRoom(alice, { room_alias_name: alias });
    const t = await c(alice).post(`${V3}/createRoom`, { room_alias_name: alias });
    expect(t.status).toBe(400);
    expect(t.body.errcode).toBe('M_ROOM_IN_USE');
    const nojson = await c(alice).post(`${V3}/createRoom`, undefined, { raw: '{not json', headers: { 'content-type': 'application/json' } });
    expect(nojson.status).toBe(400);
    expect(nojson.body.errcode).toBe('M_NOT_JSON');
    const unauth = await c().post(`${V3}/createRoom`, {});
    expect(unauth.status).toBe(401);
  });

  it('supports every room version, power_level_content_override and initial_state', async () => {
    for (const v of ['1', '3', '5', '9', '11']) {
      const roomId = await createRoom(alice, { room_version: v });
      const r = await send(alice, roomId, { msgtype: 'm.text', body: `in v${v}` });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const ev = await c(alice).get(`${V3}/rooms/${enc(roomId)}/event/${enc(r.body.event_id)}`);
      expect(ev.body.content.body).toBe(`in v${v}`);
    }
    const roomId = await createRoom(alice, {
      power_level_content_override: { events_default: 10 },
      initial_state: [{ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'forbidden' } }, { type: 'com.example', state_key: 'k', content: { a: 1 } }],
    });
    const pl = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels`);
    expect(pl.body.events_default).toBe(10);
    const ga = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.guest_access/`);
    expect(ga.body).toEqual({ guest_access: 'forbidden' });
    const ex = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/com.example/k`);
    expect(ex.body).toEqual({ a: 1 });
  });

  it('runs the membership lifecycle with useful errors', async () => {
    const roomId = await createRoom(alice, { preset: 'private_chat' });
    // bob cannot join an invite-only room
    const j0 = await c(bob).post(`${V3}/rooms/${enc(roomId)}/join`, {});
    expect(j0.status).toBe(403);
    expect(j0.body.errcode).toBe('M_FORBIDDEN');
    expect(j0.body.error).toMatch(/invited/);
    // bob cannot send before joining
    const s0 = await send(bob, roomId, { body: 'x' });
    expect(s0.status).toBe(403);
    // invite, join with reason
    expect((await c(alice).post(`${V3}/rooms/${enc(roomId)}/invite`, { user_id: bob.userId, reason: 'welcome' })).status).toBe(200);
    const dupInvite = await c(alice).post(`${V3}/rooms/${enc(roomId)}/invite`, { user_id: 'bad' });
    expect(dupInvite.status).toBe(400);
    const j1 = await c(bob).post(`${V3}/join/${enc(roomId)}`, { reason: 'hi' });
    expect(j1.status).toBe(200);
    expect(j1.body.room_id).toBe(roomId);
    const member = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`);
    expect(member.body).toMatchObject({ membership: 'join', reason: 'hi' });
    const again = await c(alice).post(`${V3}/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
    expect(again.status).toBe(403);
    expect(again.body.error).toMatch(/already in the room/);
    // bob (PL 0) cannot kick alice
    const k0 = await c(bob).post(`${V3}/rooms/${enc(roomId)}/kick`, { user_id: alice.userId });
    expect(k0.status).toBe(403);
    expect(k0.body.error).toMatch(/permission to kick/);
    // joined rooms / members
    const jr = await c(bob).get(`${V3}/joined_rooms`);
    expect(jr.body.joined_rooms).toContain(roomId);
    const jm = await c(bob).get(`${V3}/rooms/${enc(roomId)}/joined_members`);
    expect(Object.keys(jm.body.joined).sort()).toEqual([alice.userId, bob.userId].sort());
    expect(jm.body.joined[alice.userId].display_name).toBe('Alice A');
    // kick with reason
    expect((await c(alice).post(`${V3}/rooms/${enc(roomId)}/kick`, { user_id: bob.userId, reason: 'bye' })).status).toBe(200);
    const kicked = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`);
    expect(kicked.body).toMatchObject({ membership: 'leave', reason: 'bye' });
    // ban, unban
    expect((await c(alice).post(`${V3}/rooms/${enc(roomId)}/ban`, { user_id: bob.userId, reason: 'spam' })).status).toBe(200);
    const banned = await c(bob).post(`${V3}/rooms/${enc(roomId)}/join`, {});
    expect(banned.status).toBe(403);
    expect(banned.body.error).toMatch(/banned/);
    const unbanByBob = await c(bob).post(`${V3}/rooms/${enc(roomId)}/unban`, { user_id: bob.userId });
    expect(unbanByBob.status).toBe(403);
    expect((await c(alice).post(`${V3}/rooms/${enc(roomId)}/unban`, { user_id: bob.userId })).status).toBe(200);
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`)).body.membership).toBe('leave');
    // missing user_id
    const mk = await c(alice).post(`${V3}/rooms/${enc(roomId)}/kick`, {});
    expect(mk.status).toBe(400);
    expect(mk.body.errcode).toBe('M_MISSING_PARAM');
    // forget
    const f0 = await c(alice).post(`${V3}/rooms/${enc(roomId)}/forget`, {});
    expect(f0.status).toBe(400);
    expect((await c(bob).post(`${V3}/rooms/${enc(roomId)}/forget`, {})).status).toBe(200);
    // unknown room
    const unknown = await c(bob).post(`${V3}/join/${enc('!nope:' + server().serverName)}`, {});
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
  });

  it('knocks on knock rooms', async () => {
    const roomId = await createRoom(alice, { initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] });
    const k = await c(carol).post(`${V3}/knock/${enc(roomId)}`, { reason: 'let me in' });
    expect(k.status, JSON.stringify(k.body)).toBe(200);
    const m = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(carol.userId)}`);
    expect(m.body).toMatchObject({ membership: 'knock', reason: 'let me in' });
    const pub = await createRoom(alice, { preset: 'public_chat' });
    const k2 = await c(carol).post(`${V3}/knock/${enc(pub)}`, {});
    expect(k2.status).toBe(403);
  });

  it('sends idempotently per device and txn id, with transaction_id in unsigned', async () => {
    const roomId = await createRoom(alice);
    const path = `${V3}/rooms/${enc(roomId)}/send/m.room.message/same-txn`;
    const a = await c(alice).put(path, { msgtype: 'm.text', body: 'once' });
    const b = await c(alice).put(path, { msgtype: 'm.text', body: 'once' });
    expect(a.status).toBe(200);
    expect(b.body.event_id).toBe(a.body.event_id);
    const ev = await c(alice).get(`${V3}/rooms/${enc(roomId)}/event/${enc(a.body.event_id)}`);
    expect(ev.body.unsigned.transaction_id).toBe('same-txn');
    // concurrent duplicates also collapse
    const p2 = `${V3}/rooms/${enc(roomId)}/send/m.room.message/conc`;
    const [x, y] = await Promise.all([c(alice).put(p2, { body: '1' }), c(alice).put(p2, { body: '1' })]);
    expect(x.body.event_id).toBe(y.body.event_id);
    const msgs = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
    expect((msgs.body.chunk as any[]).filter((e) => e.type === 'm.room.message')).toHaveLength(2);
    // A transaction id too long to store is a bad request (not a 500), on every send path.
    const long = 't'.repeat(3000);
    const tooLong = await c(alice).put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/${long}`, { msgtype: 'm.text', body: 'x' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errcode).toBe('M_INVALID_PARAM');
    const redactLong = await c(alice).put(`${V3}/rooms/${enc(roomId)}/redact/${enc(a.body.event_id)}/${long}`, {});
    expect(redactLong.status).toBe(400);
    const longest = await c(alice).put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/${'u'.repeat(1024)}`, { msgtype: 'm.text', body: 'y' });
    expect(longest.status).toBe(200);
  });

  it('scopes txn ids by endpoint path: another room, event type or redaction is a new request, the same path a retry', async () => {
    const roomA = await createRoom(alice);
    const roomB = await createRoom(alice);
    const sendPath = (roomId: string, type: string) => `${V3}/rooms/${enc(roomId)}/send/${enc(type)}/scoped-txn`;
    const redactPath = (roomId: string, eventId: string) => `${V3}/rooms/${enc(roomId)}/redact/${enc(eventId)}/scoped-txn`;
    const ok = (r: { status: number; body: any }) => {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.event_id as string;
    };
    const inA = ok(await c(alice).put(sendPath(roomA, 'm.room.message'), { msgtype: 'm.text', body: 'in A' }));
    const inB = ok(await c(alice).put(sendPath(roomB, 'm.room.message'), { msgtype: 'm.text', body: 'in B' }));
    const get = (roomId: string, id: string) => c(alice).get(`${V3}/rooms/${enc(roomId)}/event/${enc(id)}`);
    expect((await get(roomB, inB)).body).toMatchObject({ room_id: roomB, type: 'm.room.message', content: { body: 'in B' }, unsigned: { transaction_id: 'scoped-txn' } });
    const otherType = ok(await c(alice).put(sendPath(roomA, 'org.example.other'), { body: 'other type' }));
    const redaction = ok(await c(alice).put(redactPath(roomA, inA), { reason: 'scoped' }));
    const redactB = ok(await c(alice).put(redactPath(roomB, inB), {}));
    expect(new Set([inA, inB, otherType, redaction, redactB]).size).toBe(5);
    // Each is the event its own path asked for, in its own room.
    expect((await get(roomA, otherType)).body).toMatchObject({ type: 'org.example.other', content: { body: 'other type' } });
    expect((await get(roomA, redaction)).body).toMatchObject({ type: 'm.room.redaction', redacts: inA });
    expect((await get(roomA, inA)).body.content).toEqual({});
    // Retries of every path, sequential and concurrent, get the same events and create nothing.
    const retries = async () => [
      ok(await c(alice).put(sendPath(roomA, 'm.room.message'), { msgtype: 'm.text', body: 'in A' })),
      ...(await Promise.all([
        c(alice).put(sendPath(roomB, 'm.room.message'), { msgtype: 'm.text', body: 'in B' }),
        c(alice).put(sendPath(roomA, 'org.example.other'), { body: 'other type' }),
        c(alice).put(redactPath(roomA, inA), { reason: 'scoped' }),
        c(alice).put(redactPath(roomB, inB), {}),
      ])).map(ok),
    ];
    expect(await retries()).toEqual([inA, inB, otherType, redaction, redactB]);
    expect(await retries()).toEqual([inA, inB, otherType, redaction, redactB]);
    for (const [roomId, n] of [[roomA, 3], [roomB, 2]] as const) {
      const msgs = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
      expect((msgs.body.chunk as any[]).filter((e) => e.state_key === undefined), roomId).toHaveLength(n);
    }
    // A redaction path names the event: bounded like any event id (a clear 400, never a 500).
    const longId = await c(alice).put(redactPath(roomA, `$${'e'.repeat(300)}`), {});
    expect([longId.status, longId.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    // User, device, path and txn id are one key of bounded size (a PostgreSQL index entry): parts each
    // within their own bounds that are too long together are a 400 (a 255-byte room id whose `%`s the
    // scope encodes, a 255-byte type, a 1 kB txn id, a device id of 255 three-byte characters).
    const login = await c().post(`${V3}/login`, {
      type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password, device_id: '€'.repeat(255),
    });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    const wideRoom = `!${'%'.repeat(253 - server().serverName.length)}:${server().serverName}`;
    const wide = await new RawClient(server().baseUrl, login.body.access_token).put(
      `${V3}/rooms/${enc(wideRoom)}/send/${'t'.repeat(255)}/${'w'.repeat(1024)}`, { body: 'x' },
    );
    expect([wide.status, wide.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('answers a burst of sends and of their retries (lookups asked together) with one event per txn id', async () => {
    const roomId = await createRoom(alice);
    const path = (t: string) => `${V3}/rooms/${enc(roomId)}/send/m.room.message/${t}`;
    const txns = Array.from({ length: 12 }, (_, i) => `burst-${i}`);
    const login = await c().post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password });
    expect(login.status).toBe(200);
    const alice2: RegisteredUser = { ...alice, accessToken: login.body.access_token, deviceId: login.body.device_id };
    const first = await Promise.all(txns.map((t) => c(alice).put(path(t), { msgtype: 'm.text', body: t })));
    expect(first.map((r) => r.status)).toEqual(txns.map(() => 200));
    expect(new Set(first.map((r) => r.body.event_id)).size).toBe(txns.length);
    // Retries of all of them, a new txn id among them, and the same txn ids from another device.
    const [again, fresh, otherDevice] = await Promise.all([
      Promise.all(txns.map((t) => c(alice).put(path(t), { msgtype: 'm.text', body: t }))),
      c(alice).put(path('burst-new'), { msgtype: 'm.text', body: 'new' }),
      Promise.all(txns.slice(0, 3).map((t) => c(alice2).put(path(t), { msgtype: 'm.text', body: t }))),
    ]);
    expect(again.map((r) => r.body.event_id)).toEqual(first.map((r) => r.body.event_id));
    expect(fresh.status).toBe(200);
    for (const r of otherDevice) expect(first.map((f) => f.body.event_id)).not.toContain(r.body.event_id);
    const msgs = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
    expect((msgs.body.chunk as any[]).filter((e) => e.type === 'm.room.message')).toHaveLength(txns.length + 1 + 3);
  });

  it('enforces power levels, state key rules and sizes', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await c(bob).post(`${V3}/join/${enc(roomId)}`, {});
    const name = await c(bob).put(`${V3}/rooms/${enc(roomId)}/state/m.room.name`, { name: 'bob was here' });
    expect(name.status).toBe(403);
    expect(name.body.errcode).toBe('M_FORBIDDEN');
    // state keys that are another user's id are reserved
    const other = await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/com.example/${enc(bob.userId)}`, { x: 1 });
    expect(other.status).toBe(403);
    const own = await c(bob).put(`${V3}/rooms/${enc(roomId)}/state/m.room.name/`, { name: 'x' });
    expect(own.status).toBe(403);
    // state with and without trailing key, and a key with slashes
    const s1 = await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/com.example.thing`, { v: 1 });
    expect(s1.status).toBe(200);
    const g1 = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/com.example.thing/`);
    expect(g1.body).toEqual({ v: 1 });
    const s2 = await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/com.example.thing/${enc('a/b c')}`, { v: 2 });
    expect(s2.status).toBe(200);
    const g2 = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/com.example.thing/${enc('a/b c')}?format=event`);
    expect(g2.body).toMatchObject({ state_key: 'a/b c', content: { v: 2 }, type: 'com.example.thing' });
    const missing = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/com.example.none/`);
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    // re-sending identical state returns the same event
    const s3 = await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/com.example.thing`, { v: 1 });
    expect(s3.body.event_id).toBe(s1.body.event_id);
    // prev_content on replaced state
    await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/com.example.thing`, { v: 3 });
    const g3 = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/com.example.thing?format=event`);
    expect(g3.body.unsigned.prev_content).toEqual({ v: 1 });
    // oversize
    const big = await send(alice, roomId, { body: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.body.errcode).toBe('M_TOO_LARGE');
    // floats are not canonical JSON in v6+
    const fl = await send(alice, roomId, { body: 'f', n: 1.5 });
    expect(fl.status).toBe(400);
    expect(fl.body.errcode).toBe('M_BAD_JSON');
    // not JSON / not an object
    const bad = await c(alice).put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/bad1`, undefined, { raw: '[1]', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_BAD_JSON');
    // a stranger cannot send or read
    const stranger = await send(carol, roomId, { body: 'hi' });
    expect(stranger.status).toBe(403);
    // unknown room
    const unknownSend = await send(alice, `!unknown:${server().serverName}`, { body: 'x' });
    expect(unknownSend.status).toBe(404);
    const badRoom = await send(alice, 'not-a-room', { body: 'x' });
    expect(badRoom.status).toBe(400);
  });

  it('redacts own events, and others only with the redact level', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await c(bob).post(`${V3}/join/${enc(roomId)}`, {});
    const a = await send(alice, roomId, { msgtype: 'm.text', body: 'secret' });
    const b = await send(bob, roomId, { msgtype: 'm.text', body: 'bob says' });
    const byBob = await c(bob).put(`${V3}/rooms/${enc(roomId)}/redact/${enc(a.body.event_id)}/r1`, { reason: 'no' });
    expect(byBob.status).toBe(403);
    const own = await c(bob).put(`${V3}/rooms/${enc(roomId)}/redact/${enc(b.body.event_id)}/r2`, { reason: 'oops' });
    expect(own.status).toBe(200);
    const byAlice = await c(alice).put(`${V3}/rooms/${enc(roomId)}/redact/${enc(a.body.event_id)}/r3`, {});
    expect(byAlice.status).toBe(200);
    const ev = await c(bob).get(`${V3}/rooms/${enc(roomId)}/event/${enc(b.body.event_id)}`);
    expect(ev.body.content).toEqual({});
    expect(ev.body.unsigned.redacted_because).toMatchObject({ type: 'm.room.redaction', sender: bob.userId, content: { reason: 'oops' } });
    const redaction = await c(bob).get(`${V3}/rooms/${enc(roomId)}/event/${enc(own.body.event_id)}`);
    expect(redaction.body.redacts).toBe(b.body.event_id);
    const unknown = await c(alice).put(`${V3}/rooms/${enc(roomId)}/redact/${enc('$nope')}/r4`, {});
    expect(unknown.status).toBe(404);
  });
});

describeShapes('rooms: reading history', (server) => {
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  const c = (u?: RegisteredUser) => new RawClient(server().baseUrl, u?.accessToken);
  let txn = 0;
  const send = (u: RegisteredUser, roomId: string, body: Record<string, unknown>) =>
    c(u).put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/t${++txn}`, body);

  it('registers users', async () => {
    alice = await server().registerUser();
    bob = await server().registerUser();
    carol = await server().registerUser();
  });

  it('paginates /messages backwards and forwards with tokens and filters', async () => {
    const roomId = (await c(alice).post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id;
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push((await send(alice, roomId, { msgtype: 'm.text', body: `m${i}`, ...(i === 4 ? { url: 'mxc://x/y' } : {}) })).body.event_id);
    const p1 = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=5`);
    expect(p1.status).toBe(200);
    expect(p1.body.chunk.map((e: any) => e.content.body)).toEqual(['m14', 'm13', 'm12', 'm11', 'm10']);
    expect(p1.body.start).toBeTruthy();
    const p2 = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=5&from=${enc(p1.body.end)}`);
    expect(p2.body.chunk.map((e: any) => e.content.body)).toEqual(['m9', 'm8', 'm7', 'm6', 'm5']);
    // forwards from p2's end
    const f = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=f&limit=3&from=${enc(p2.body.end)}`);
    expect(f.body.chunk.map((e: any) => e.content.body)).toEqual(['m5', 'm6', 'm7']);
    // `to` bounds the walk
    const bounded = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50&from=${enc(p1.body.end)}&to=${enc(p2.body.end)}`);
    expect(bounded.body.chunk.map((e: any) => e.content.body)).toEqual(['m9', 'm8', 'm7', 'm6', 'm5']);
    // end of history: no end token
    const all = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=100`);
    expect(all.body.end).toBeUndefined();
    expect(all.body.chunk[all.body.chunk.length - 1].type).toBe('m.room.create');
    // filters
    const onlyMsgs = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=100&filter=${enc(JSON.stringify({ types: ['m.room.message'] }))}`);
    expect(onlyMsgs.body.chunk).toHaveLength(15);
    const notMsgs = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=100&filter=${enc(JSON.stringify({ not_types: ['m.room.message'] }))}`);
    expect(notMsgs.body.chunk.every((e: any) => e.type !== 'm.room.message')).toBe(true);
    const urls = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=100&filter=${enc(JSON.stringify({ contains_url: true }))}`);
    expect(urls.body.chunk.map((e: any) => e.content.body)).toEqual(['m4']);
    const senders = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=100&filter=${enc(JSON.stringify({ senders: [bob.userId] }))}`);
    expect(senders.body.chunk).toEqual([]);
    const lazy = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=3&filter=${enc(JSON.stringify({ lazy_load_members: true }))}`);
    expect(lazy.body.state.map((e: any) => e.state_key)).toEqual([alice.userId]);
    // bad inputs
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=x`)).status).toBe(400);
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&from=garbage`)).status).toBe(400);
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&filter=notjson`)).status).toBe(400);
    // sync-style token accepted as from
    const fromSync = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=2&from=s1_999999999_0_0_0_0_0_0_0`);
    expect(fromSync.status).toBe(200);
    expect(fromSync.body.chunk.map((e: any) => e.content.body)).toEqual(['m14', 'm13']);
    // context
    const ctx = await c(alice).get(`${V3}/rooms/${enc(roomId)}/context/${enc(ids[7]!)}?limit=4`);
    expect(ctx.status).toBe(200);
    expect(ctx.body.event.content.body).toBe('m7');
    expect(ctx.body.events_before.map((e: any) => e.content.body)).toEqual(['m6', 'm5']);
    expect(ctx.body.events_after.map((e: any) => e.content.body)).toEqual(['m8', 'm9']);
    expect(ctx.body.state.some((e: any) => e.type === 'm.room.create')).toBe(true);
    const ctxBack = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=1&from=${enc(ctx.body.start)}`);
    expect(ctxBack.body.chunk[0].content.body).toBe('m4');
    const ctxFwd = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=f&limit=1&from=${enc(ctx.body.end)}`);
    expect(ctxFwd.body.chunk[0].content.body).toBe('m10');
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/context/${enc('$missing')}`)).status).toBe(404);
    // timestamp_to_event
    const first = await c(alice).get(`${V3}/rooms/${enc(roomId)}/event/${enc(ids[0]!)}`);
    const ts = await c(alice).get(`/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?ts=${first.body.origin_server_ts + 1_000_000}&dir=b`);
    expect(ts.status).toBe(200);
    expect(ts.body.event_id).toBe(ids[14]);
    const tsNone = await c(alice).get(`/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?ts=1&dir=b`);
    expect(tsNone.status).toBe(404);
    expect((await c(alice).get(`/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?ts=1`)).status).toBe(400);
  });

  it('applies history visibility: joined, shared, and users who left', async () => {
    const roomId = (await c(alice).post(`${V3}/createRoom`, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }],
    })).body.room_id;
    await send(alice, roomId, { body: 'before bob' });
    await c(bob).post(`${V3}/join/${enc(roomId)}`, {});
    await send(alice, roomId, { body: 'while bob' });
    await c(bob).post(`${V3}/rooms/${enc(roomId)}/leave`, {});
    const after = await send(alice, roomId, { body: 'after bob' });
    const bodies = (r: any) => r.body.chunk.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body);
    const bobView = await c(bob).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
    expect(bobView.status).toBe(200);
    expect(bodies(bobView)).toEqual(['while bob']);
    const aliceView = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
    expect(bodies(aliceView)).toEqual(['after bob', 'while bob', 'before bob']);
    // ... also from a token given after his leave (a page token, a sync token), both directions
    const newest = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=1`);
    const sinceLeave = await c(bob).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50&from=${enc(newest.body.start)}`);
    expect(bodies(sinceLeave)).toEqual(['while bob']);
    const syncToken = (await c(alice).get(`${V3}/sync?timeout=0`)).body.next_batch;
    const fromSync = await c(bob).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50&from=${enc(syncToken)}`);
    expect(bodies(fromSync)).toEqual(['while bob']);
    const oldest = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=f&limit=1`);
    const forward = await c(bob).get(`${V3}/rooms/${enc(roomId)}/messages?dir=f&limit=50&from=${enc(oldest.body.start)}`);
    expect(bodies(forward)).toEqual(['while bob']);
    // bob cannot fetch the event after his leave
    const ev = await c(bob).get(`${V3}/rooms/${enc(roomId)}/event/${enc(after.body.event_id)}`);
    expect(ev.status).toBe(404);
    // carol (never joined) is forbidden
    const carolView = await c(carol).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b`);
    expect(carolView.status).toBe(403);
    expect((await c(carol).get(`${V3}/rooms/${enc(roomId)}/state`)).status).toBe(403);
    expect((await c(carol).get(`${V3}/rooms/${enc(roomId)}/members`)).status).toBe(403);
    // bob sees state as of his leave
    await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/m.room.topic`, { topic: 'new topic' });
    const bobState = await c(bob).get(`${V3}/rooms/${enc(roomId)}/state`);
    expect(bobState.body.some((e: any) => e.type === 'm.room.topic')).toBe(false);

    // shared: newly joined users see earlier history
    const shared = (await c(alice).post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id;
    await send(alice, shared, { body: 'early' });
    await c(carol).post(`${V3}/join/${enc(shared)}`, {});
    expect(bodies(await c(carol).get(`${V3}/rooms/${enc(shared)}/messages?dir=b&limit=50`))).toEqual(['early']);

    // world_readable: anyone may read
    const wr = (await c(alice).post(`${V3}/createRoom`, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'world_readable' } }],
    })).body.room_id;
    await send(alice, wr, { body: 'public' });
    const peek = await c(carol).get(`${V3}/rooms/${enc(wr)}/messages?dir=b&limit=50`);
    expect(bodies(peek)).toEqual(['public']);
  });

  it('serves /members with at, membership and not_membership', async () => {
    const roomId = (await c(alice).post(`${V3}/createRoom`, { preset: 'public_chat', invite: [carol.userId] })).body.room_id;
    const beforeBob = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=1`);
    await c(bob).post(`${V3}/join/${enc(roomId)}`, {});
    const all = await c(alice).get(`${V3}/rooms/${enc(roomId)}/members`);
    expect(all.body.chunk.map((e: any) => e.state_key).sort()).toEqual([alice.userId, bob.userId, carol.userId].sort());
    const joined = await c(alice).get(`${V3}/rooms/${enc(roomId)}/members?membership=join`);
    expect(joined.body.chunk.map((e: any) => e.state_key).sort()).toEqual([alice.userId, bob.userId].sort());
    const notJoined = await c(alice).get(`${V3}/rooms/${enc(roomId)}/members?not_membership=join`);
    expect(notJoined.body.chunk.map((e: any) => e.state_key)).toEqual([carol.userId]);
    const at = await c(alice).get(`${V3}/rooms/${enc(roomId)}/members?at=${enc(beforeBob.body.start)}`);
    expect(at.body.chunk.map((e: any) => e.state_key).sort()).toEqual([alice.userId, carol.userId].sort());
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/members?membership=nope`)).status).toBe(400);
  });

  it('manages aliases and the room directory', async () => {
    const roomId = (await c(alice).post(`${V3}/createRoom`, { name: 'Findable Room', topic: 'zebras' })).body.room_id;
    const alias = `#al${Date.now()}:${server().serverName}`;
    expect((await c(alice).put(`${V3}/directory/room/${enc(alias)}`, { room_id: roomId })).status).toBe(200);
    const dup = await c(alice).put(`${V3}/directory/room/${enc(alias)}`, { room_id: roomId });
    expect(dup.status).toBe(409);
    const notMember = await c(bob).put(`${V3}/directory/room/${enc('#other' + Date.now() + ':' + server().serverName)}`, { room_id: roomId });
    expect(notMember.status).toBe(403);
    const foreign = await c(alice).put(`${V3}/directory/room/${enc('#x:elsewhere.org')}`, { room_id: roomId });
    expect(foreign.status).toBe(400);
    const got = await c(bob).get(`${V3}/directory/room/${enc(alias)}`);
    expect(got.body).toEqual({ room_id: roomId, servers: [server().serverName] });
    expect((await c(bob).get(`${V3}/directory/room/${enc('#none:' + server().serverName)}`)).status).toBe(404);
    expect((await c(alice).get(`${V3}/rooms/${enc(roomId)}/aliases`)).body.aliases).toEqual([alias]);
    expect((await c(bob).get(`${V3}/rooms/${enc(roomId)}/aliases`)).status).toBe(403);
    // join by alias
    await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/m.room.join_rules`, { join_rule: 'public' });
    const j = await c(bob).post(`${V3}/join/${enc(alias)}`, {});
    expect(j.body.room_id).toBe(roomId);
    // canonical alias must point to the room
    const badCanon = await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/m.room.canonical_alias`, { alias: `#nothere:${server().serverName}` });
    expect(badCanon.status).toBe(400);
    expect(badCanon.body.errcode).toBe('M_BAD_ALIAS');
    expect((await c(alice).put(`${V3}/rooms/${enc(roomId)}/state/m.room.canonical_alias`, { alias })).status).toBe(200);
    // bob (not creator, PL 0) cannot delete; alice can
    expect((await c(bob).delete(`${V3}/directory/room/${enc(alias)}`)).status).toBe(403);
    // directory visibility
    expect((await c(bob).get(`${V3}/directory/list/room/${enc(roomId)}`)).body.visibility).toBe('private');
    expect((await c(bob).put(`${V3}/directory/list/room/${enc(roomId)}`, { visibility: 'public' })).status).toBe(403);
    expect((await c(alice).put(`${V3}/directory/list/room/${enc(roomId)}`, { visibility: 'public' })).status).toBe(200);
    const pub = await c(bob).get(`${V3}/publicRooms?limit=50`);
    const entry = pub.body.chunk.find((e: any) => e.room_id === roomId);
    expect(entry).toMatchObject({ name: 'Findable Room', topic: 'zebras', canonical_alias: alias, num_joined_members: 2, world_readable: false, join_rule: 'public' });
    expect(pub.body.total_room_count_estimate).toBeGreaterThanOrEqual(1);
    const search = await c(bob).post(`${V3}/publicRooms`, { filter: { generic_search_term: 'ZEBRA' } });
    expect(search.body.chunk.map((e: any) => e.room_id)).toEqual([roomId]);
    const noHit = await c(bob).post(`${V3}/publicRooms`, { filter: { generic_search_term: 'no-such-room-xyz' } });
    expect(noHit.body.chunk).toEqual([]);
    // paging
    await c(alice).post(`${V3}/createRoom`, { visibility: 'public', name: 'second' });
    const page1 = await c(bob).get(`${V3}/publicRooms?limit=1`);
    expect(page1.body.chunk).toHaveLength(1);
    expect(page1.body.next_batch).toBeTruthy();
    const page2 = await c(bob).get(`${V3}/publicRooms?limit=1&since=${enc(page1.body.next_batch)}`);
    expect(page2.body.chunk[0].room_id).not.toBe(page1.body.chunk[0].room_id);
    expect((await c(bob).get(`${V3}/publicRooms?since=bad`)).status).toBe(400);
    expect((await c(alice).delete(`${V3}/directory/room/${enc(alias)}`)).status).toBe(200);
    expect((await c(bob).get(`${V3}/directory/room/${enc(alias)}`)).status).toBe(404);
  });

  it('updates member events when the profile changes', async () => {
    const roomId = (await c(alice).post(`${V3}/createRoom`, {})).body.room_id;
    const r = await c(alice).put(`${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: 'Renamed Alice' });
    expect(r.status).toBe(200);
    const m = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(alice.userId)}`);
    expect(m.body).toMatchObject({ membership: 'join', displayname: 'Renamed Alice' });
  });
});
