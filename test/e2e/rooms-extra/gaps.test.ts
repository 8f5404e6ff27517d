/**
 * Small gaps of the client room API, over raw HTTP in every shape:
 * reporting users (Matrix 1.14), the canonical alias kept in step when an
 * alias is deleted or moved by an upgrade, and history visibility applied by
 * timestamp_to_event.
 */
import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';
const V1 = '/_matrix/client/v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeShapes('rooms-extra gaps: user reports, canonical alias upkeep, timestamp_to_event visibility', (server) => {
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  let admin: RegisteredUser;
  const c = (u?: RegisteredUser) => new RawClient(server().baseUrl, u?.accessToken);
  let txn = 0;
  const tag = Date.now().toString(36);
  const aliasOf = (name: string) => `#${name}${tag}:${server().serverName}`;
  const send = async (u: RegisteredUser, roomId: string, body: string) => {
    const r = await c(u).put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/g${++txn}`, { msgtype: 'm.text', body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.event_id as string;
  };
  const createRoom = async (u: RegisteredUser, body: Record<string, unknown> = {}) => {
    const r = await c(u).post(`${V3}/createRoom`, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.room_id as string;
  };
  const join = async (u: RegisteredUser, roomId: string) => {
    const r = await c(u).post(`${V3}/join/${enc(roomId)}`, {});
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  const putState = async (u: RegisteredUser, roomId: string, type: string, content: Record<string, unknown>, sk = '') => {
    const r = await c(u).put(`${V3}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(sk)}`, content);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.event_id as string;
  };
  const addAlias = async (u: RegisteredUser, alias: string, roomId: string) => {
    const r = await c(u).put(`${V3}/directory/room/${enc(alias)}`, { room_id: roomId });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };
  /** The current m.room.canonical_alias event (from the full state: sender and event id too). */
  const canonical = async (u: RegisteredUser, roomId: string) => {
    const r = await c(u).get(`${V3}/rooms/${enc(roomId)}/state`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return (r.body as any[]).find((e) => e.type === 'm.room.canonical_alias' && e.state_key === '');
  };

  it('registers users', async () => {
    alice = await server().registerUser();
    bob = await server().registerUser();
    carol = await server().registerUser();
    admin = await server().registerUser(undefined, { admin: true });
  });

  // ----------------------------------------------------------- user reports
  it('reports users of this server, with their bad inputs', async () => {
    const report = (u: RegisteredUser | undefined, target: string, body: unknown) => c(u).post(`${V3}/users/${enc(target)}/report`, body);
    // No shared room needed.
    const ok = await report(bob, carol.userId, { reason: 'spam' });
    expect([ok.status, ok.body]).toEqual([200, {}]);
    expect((await report(bob, carol.userId, { reason: '' })).status).toBe(200); // may be blank
    expect((await report(bob, bob.userId, { reason: 'myself' })).status).toBe(200);

    const unknown = await report(bob, `@nobody${tag}:${server().serverName}`, { reason: 'x' });
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const remote = await report(bob, '@someone:elsewhere.example', { reason: 'x' });
    expect([remote.status, remote.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

    for (const bad of ['notauser', '@nocolon', '!room:example.org', `@a:${'x'.repeat(300)}.org`]) {
      const r = await report(bob, bad, { reason: 'x' });
      expect([r.status, r.body.errcode], bad).toEqual([400, 'M_INVALID_PARAM']);
    }
    const missing = await report(bob, carol.userId, {});
    expect([missing.status, missing.body.errcode]).toEqual([400, 'M_MISSING_PARAM']);
    const wrongType = await report(bob, carol.userId, { reason: 5 });
    expect([wrongType.status, wrongType.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    expect((await report(bob, carol.userId, { reason: null })).body.errcode).toBe('M_MISSING_PARAM');
    const notJson = await c(bob).post(`${V3}/users/${enc(carol.userId)}/report`, undefined, { raw: '{nope', headers: { 'content-type': 'application/json' } });
    expect([notJson.status, notJson.body.errcode]).toEqual([400, 'M_NOT_JSON']);
    const arrayBody = await report(bob, carol.userId, ['reason']);
    expect(arrayBody.status).toBe(400);
    const anon = await report(undefined, carol.userId, { reason: 'x' });
    expect([anon.status, anon.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  // --------------------------------------------------- canonical alias upkeep
  it('deleting an alias named by the canonical alias sends a new canonical alias as the deleter', async () => {
    const room = await createRoom(alice, { preset: 'public_chat' });
    const [main, alt, other] = [aliasOf('main'), aliasOf('alt'), aliasOf('other')];
    await addAlias(alice, main, room);
    await addAlias(alice, alt, room);
    await addAlias(alice, other, room);
    await putState(alice, room, 'm.room.canonical_alias', { alias: main, alt_aliases: [alt, '#far:elsewhere.example'] });

    // An alias the canonical alias does not name: no new event.
    const before = await canonical(alice, room);
    expect((await c(alice).delete(`${V3}/directory/room/${enc(other)}`)).status).toBe(200);
    expect((await canonical(alice, room)).event_id).toBe(before.event_id);

    expect((await c(alice).delete(`${V3}/directory/room/${enc(main)}`)).status).toBe(200);
    const afterMain = await canonical(alice, room);
    expect(afterMain.event_id).not.toBe(before.event_id);
    expect(afterMain.sender).toBe(alice.userId);
    expect(afterMain.content).toEqual({ alt_aliases: [alt, '#far:elsewhere.example'] });

    expect((await c(alice).delete(`${V3}/directory/room/${enc(alt)}`)).status).toBe(200);
    expect((await canonical(alice, room)).content).toEqual({ alt_aliases: ['#far:elsewhere.example'] });
    // The alias is gone either way.
    expect((await c(alice).get(`${V3}/directory/room/${enc(alt)}`)).status).toBe(404);
  });

  it('sends it as a local member who may when the deleter may not, and skips when nobody can', async () => {
    const room = await createRoom(alice, { preset: 'public_chat' });
    await join(bob, room);
    // bob (power 0) owns an alias the canonical alias names: he may delete it,
    // but not change the canonical alias; alice (100) does it.
    const bobs = aliasOf('bobs');
    await addAlias(bob, bobs, room);
    await putState(alice, room, 'm.room.canonical_alias', { alias: bobs });
    expect((await c(bob).delete(`${V3}/directory/room/${enc(bobs)}`)).status).toBe(200);
    const ev = await canonical(alice, room);
    expect(ev.sender).toBe(alice.userId);
    expect(ev.content).toEqual({});

    // A server admin outside the room deletes an alias: alice again.
    const adminGone = aliasOf('admingone');
    await addAlias(alice, adminGone, room);
    await putState(alice, room, 'm.room.canonical_alias', { alias: adminGone });
    expect((await c(admin).delete(`${V3}/directory/room/${enc(adminGone)}`)).status).toBe(200);
    const byAdmin = await canonical(alice, room);
    expect(byAdmin.sender).toBe(alice.userId);
    expect(byAdmin.content.alias).toBeUndefined();

    // Nobody left who may: the deletion still succeeds, the event stays.
    const lonely = aliasOf('lonely');
    await addAlias(bob, lonely, room);
    const kept = await putState(alice, room, 'm.room.canonical_alias', { alias: lonely });
    expect((await c(alice).post(`${V3}/rooms/${enc(room)}/leave`, {})).status).toBe(200);
    expect((await c(bob).delete(`${V3}/directory/room/${enc(lonely)}`)).status).toBe(200);
    const still = await canonical(bob, room);
    expect(still.event_id).toBe(kept);
    expect((await c(bob).get(`${V3}/directory/room/${enc(lonely)}`)).status).toBe(404);
  });

  it('an upgrade takes the moved aliases out of the old room canonical alias, even when the upgrader may not change power levels', async () => {
    const old = await createRoom(alice, { preset: 'public_chat', room_version: '9' });
    await join(bob, old);
    await putState(alice, old, 'm.room.power_levels', {
      users: { [alice.userId]: 100, [bob.userId]: 50 },
      users_default: 0, events_default: 0, state_default: 50, ban: 50, kick: 50, redact: 50, invite: 0,
      events: { 'm.room.tombstone': 50, 'm.room.power_levels': 100, 'm.room.canonical_alias': 50 },
    });
    const alias = aliasOf('upg');
    await addAlias(alice, alias, old);
    await putState(alice, old, 'm.room.canonical_alias', { alias, alt_aliases: ['#far:elsewhere.example'] });

    const up = await c(bob).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: '10' });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    const neu = up.body.replacement_room as string;
    expect((await c(bob).get(`${V3}/directory/room/${enc(alias)}`)).body.room_id).toBe(neu);
    expect((await canonical(bob, neu)).content.alias).toBe(alias);
    const oldCanon = await canonical(bob, old);
    expect(oldCanon.sender).toBe(bob.userId);
    expect(oldCanon.content).toEqual({ alt_aliases: ['#far:elsewhere.example'] });
  });

  // ------------------------------------------ timestamp_to_event visibility
  it('timestamp_to_event returns only events the user may see', async () => {
    const room = await createRoom(alice, { preset: 'public_chat' });
    // The room's first events are 'shared' (the preset), so visible to
    // everyone who joins later; what follows this event is 'joined'.
    const hvId = await putState(alice, room, 'm.room.history_visibility', { history_visibility: 'joined' });
    const hvTs = Number((await c(alice).get(`${V3}/rooms/${enc(room)}/event/${enc(hvId)}`)).body.origin_server_ts);
    await sleep(20);
    // More hidden events than one batch of candidates.
    const early: string[] = [];
    for (let i = 0; i < 25; i++) early.push(await send(alice, room, `before bob ${i}`));
    const tMid = Number((await c(alice).get(`${V3}/rooms/${enc(room)}/event/${enc(early[early.length - 1]!)}`)).body.origin_server_ts);
    await sleep(20);
    await join(bob, room);
    const after = await send(alice, room, 'after bob');
    const bobJoin = (await c(bob).get(`${V3}/rooms/${enc(room)}/state`)).body.find((e: any) => e.type === 'm.room.member' && e.state_key === bob.userId);
    const tsq = (u: RegisteredUser, ts: number, dir: string) => c(u).get(`${V1}/rooms/${enc(room)}/timestamp_to_event?ts=${ts}&dir=${dir}`);

    // alice sees everything: the last early message is the newest at tMid.
    const a = await tsq(alice, tMid, 'b');
    expect([a.status, a.body.event_id]).toEqual([200, early[early.length - 1]]);
    // bob joined after tMid: backwards, past the 25 hidden messages, the
    // history_visibility change (visible under its 'shared' side).
    const back = await tsq(bob, tMid, 'b');
    expect([back.status, back.body.event_id]).toEqual([200, hvId]);
    // Forwards from just after it, past the hidden messages: his own join.
    const fwd = await tsq(bob, hvTs + 1, 'f');
    expect([fwd.status, fwd.body.event_id, fwd.body.origin_server_ts]).toEqual([200, bobJoin.event_id, bobJoin.origin_server_ts]);
    const latest = await tsq(bob, Date.now() + 60_000, 'b');
    expect([latest.status, latest.body.event_id]).toEqual([200, after]);

    // carol joins and leaves; what comes after her leave is hidden from her.
    await join(carol, room);
    expect((await c(carol).post(`${V3}/rooms/${enc(room)}/leave`, {})).status).toBe(200);
    const leave = ((await c(carol).get(`${V3}/rooms/${enc(room)}/state`)).body as any[]).find(
      (e) => e.type === 'm.room.member' && e.state_key === carol.userId,
    );
    expect(leave.content.membership).toBe('leave');
    await sleep(20);
    await send(alice, room, 'after carol left');
    const late = await tsq(carol, Number(leave.origin_server_ts) + 1, 'f');
    expect([late.status, late.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const own = await tsq(carol, Date.now() + 60_000, 'b');
    expect([own.status, own.body.event_id]).toEqual([200, leave.event_id]);
    // alice still finds the message carol may not see.
    expect((await tsq(alice, Number(leave.origin_server_ts) + 1, 'f')).status).toBe(200);

    // bad inputs and strangers
    expect((await tsq(admin, Date.now(), 'b')).status).toBe(403);
    expect((await tsq(bob, Date.now(), 'x')).body.errcode).toBe('M_INVALID_PARAM');
    expect((await c(bob).get(`${V1}/rooms/${enc(room)}/timestamp_to_event?ts=abc&dir=b`)).body.errcode).toBe('M_INVALID_PARAM');
    expect((await c(bob).get(`${V1}/rooms/${enc(room)}/timestamp_to_event?dir=b`)).body.errcode).toBe('M_MISSING_PARAM');
    expect((await c(bob).get(`${V1}/rooms/${enc('not-a-room')}/timestamp_to_event?ts=1&dir=b`)).status).toBe(400);
    expect((await c().get(`${V1}/rooms/${enc(room)}/timestamp_to_event?ts=1&dir=b`)).status).toBe(401);
  });

  // ------------------------------------------------- filter query parameter
  it('an unparseable filter answers M_BAD_JSON on /sync, /messages and /context', async () => {
    const room = await createRoom(alice);
    const ev = await send(alice, room, 'hi');
    const bad = enc('{not json');
    for (const path of [
      `${V3}/sync?timeout=0&filter=${bad}`,
      `${V3}/rooms/${enc(room)}/messages?dir=b&filter=${bad}`,
      `${V3}/rooms/${enc(room)}/context/${enc(ev)}?filter=${bad}`,
      `${V3}/rooms/${enc(room)}/messages?dir=b&filter=notjson`,
    ]) {
      const r = await c(alice).get(path);
      expect([r.status, r.body.errcode], path).toEqual([400, 'M_BAD_JSON']);
    }
  });
});
