/**
 * Room version 12 over HTTP: room ids derived from the create event (no
 * server part), room creators with infinite power (additional_creators),
 * sync and pagination of such rooms, and upgrading a v10 room to v12.
 */
import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';
const HASH_ROOM_ID = /^![A-Za-z0-9_-]{43}$/;

describeShapes('room version 12', (server) => {
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  let dave: RegisteredUser;
  let roomId: string;
  const c = (u?: RegisteredUser) => new RawClient(server().baseUrl, u?.accessToken);
  let txn = 0;
  const send = async (u: RegisteredUser, room: string, body: string) => {
    const r = await c(u).put(`${V3}/rooms/${enc(room)}/send/m.room.message/v12t${Date.now()}-${++txn}`, { msgtype: 'm.text', body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.event_id as string;
  };
  const createRoom = async (u: RegisteredUser, body: Record<string, unknown>) => {
    const r = await c(u).post(`${V3}/createRoom`, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.room_id as string;
  };
  const state = async (u: RegisteredUser, room: string) => {
    const r = await c(u).get(`${V3}/rooms/${enc(room)}/state`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return Object.fromEntries((r.body as any[]).map((e) => [`${e.type}|${e.state_key}`, e]));
  };
  const putState = (u: RegisteredUser, room: string, type: string, content: Record<string, unknown>, sk = '') =>
    c(u).put(`${V3}/rooms/${enc(room)}/state/${enc(type)}/${enc(sk)}`, content);

  it('is offered as stable; the default stays 10', async () => {
    alice = await server().registerUser();
    bob = await server().registerUser();
    carol = await server().registerUser();
    dave = await server().registerUser();
    const caps = await c(alice).get(`${V3}/capabilities`);
    expect(caps.body.capabilities['m.room_versions'].default).toBe('10');
    expect(caps.body.capabilities['m.room_versions'].available['12']).toBe('stable');
  });

  it('createRoom: the room id is the create event id; creators are not in power levels users', async () => {
    roomId = await createRoom(alice, {
      room_version: '12',
      preset: 'public_chat',
      name: 'v12 room',
      creation_content: { additional_creators: [carol.userId] },
    });
    expect(roomId).toMatch(HASH_ROOM_ID);
    const s = await state(alice, roomId);
    const create = s['m.room.create|'];
    expect(create.event_id).toBe('$' + roomId.slice(1));
    expect(create.room_id).toBe(roomId); // client format names the room
    expect(create.sender).toBe(alice.userId);
    expect(create.content).toEqual({ room_version: '12', additional_creators: [carol.userId] });
    expect(create.content.creator).toBeUndefined();
    const pl = s['m.room.power_levels|'].content;
    expect(pl.users).toEqual({});
    expect(pl.events['m.room.tombstone']).toBe(150);
    expect(s['m.room.name|'].content.name).toBe('v12 room');
    const one = await c(alice).get(`${V3}/rooms/${enc(roomId)}/state/m.room.create/`);
    expect(one.body).toEqual(create.content);
    const ev = await c(alice).get(`${V3}/rooms/${enc(roomId)}/event/${enc(create.event_id)}`);
    expect([ev.status, ev.body.room_id]).toEqual([200, roomId]);
  });

  it('createRoom refuses creators in power levels and bad additional_creators', async () => {
    const listed = await c(alice).post(`${V3}/createRoom`, { room_version: '12', power_level_content_override: { users: { [alice.userId]: 100 } } });
    expect([listed.status, listed.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const extra = await c(alice).post(`${V3}/createRoom`, {
      room_version: '12',
      creation_content: { additional_creators: [bob.userId] },
      power_level_content_override: { users: { [bob.userId]: 50 } },
    });
    expect([extra.status, extra.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const notList = await c(alice).post(`${V3}/createRoom`, { room_version: '12', creation_content: { additional_creators: bob.userId } });
    expect([notList.status, notList.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    const badId = await c(alice).post(`${V3}/createRoom`, { room_version: '12', creation_content: { additional_creators: ['bob'] } });
    expect([badId.status, badId.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    // Others may be listed; trusted_private_chat invitees become creators.
    const ok = await createRoom(alice, { room_version: '12', power_level_content_override: { users: { [bob.userId]: 50 } } });
    expect((await state(alice, ok))['m.room.power_levels|'].content.users).toEqual({ [bob.userId]: 50 });
    const trusted = await createRoom(alice, { room_version: '12', preset: 'trusted_private_chat', invite: [dave.userId] });
    const ts = await state(alice, trusted);
    expect(ts['m.room.create|'].content.additional_creators).toEqual([dave.userId]);
    expect(ts['m.room.power_levels|'].content.users).toEqual({});
    // Two rooms with the same content get different ids.
    const [r1, r2] = await Promise.all([createRoom(alice, { room_version: '12' }), createRoom(alice, { room_version: '12' })]);
    expect(r1).not.toBe(r2);
  });

  it('join, send, typing, receipts and room push rules work with the server-less room id', async () => {
    const j = await c(bob).post(`${V3}/join/${enc(roomId)}`, {});
    expect([j.status, j.body.room_id]).toEqual([200, roomId]);
    expect((await c(carol).post(`${V3}/rooms/${enc(roomId)}/join`, {})).status).toBe(200);
    await send(alice, roomId, 'hello from alice');
    const last = await send(bob, roomId, 'hello from bob');
    expect((await c(bob).put(`${V3}/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true, timeout: 1000 })).status).toBe(200);
    expect((await c(alice).post(`${V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(last)}`, {})).status).toBe(200);
    const rule = await c(alice).put(`${V3}/pushrules/global/room/${enc(roomId)}`, { actions: [] });
    expect(rule.status, JSON.stringify(rule.body)).toBe(200);
    const members = await c(alice).get(`${V3}/rooms/${enc(roomId)}/joined_members`);
    expect(Object.keys(members.body.joined).sort()).toEqual([alice.userId, bob.userId, carol.userId].sort());
    // Malformed room ids are still refused.
    for (const bad of ['!short', '!' + 'a'.repeat(44), '!' + 'a'.repeat(42) + '+']) {
      const r = await c(alice).get(`${V3}/rooms/${enc(bad)}/state`);
      expect([r.status, r.body.errcode], bad).toEqual([400, 'M_INVALID_PARAM']);
    }
    const unknown = await c(alice).get(`${V3}/rooms/${enc('!' + 'Q'.repeat(43))}/state`);
    expect(unknown.status).toBe(403);
  });

  it('power levels: creators cannot be demoted, kicked or banned by admins; creators act freely', async () => {
    const pl = (await state(alice, roomId))['m.room.power_levels|'].content;
    const promote = await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { [bob.userId]: 100 } });
    expect(promote.status, JSON.stringify(promote.body)).toBe(200);
    // Bob (admin at 100) cannot demote or list a creator.
    const demote = await putState(bob, roomId, 'm.room.power_levels', { ...pl, users: { [bob.userId]: 100, [alice.userId]: 0 } });
    expect([demote.status, demote.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const self = await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { [bob.userId]: 100, [alice.userId]: 100 } });
    expect(self.status).toBe(403);
    // Bob cannot kick or ban a creator (Alice, or the additional creator Carol).
    const kick = await c(bob).post(`${V3}/rooms/${enc(roomId)}/kick`, { user_id: alice.userId });
    expect([kick.status, kick.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const ban = await c(bob).post(`${V3}/rooms/${enc(roomId)}/ban`, { user_id: carol.userId });
    expect([ban.status, ban.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    // Bob may still use his level, e.g. set the topic, and Alice may demote Bob.
    expect((await putState(bob, roomId, 'm.room.topic', { topic: 'by bob' })).status).toBe(200);
    expect((await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { [bob.userId]: 50 } })).status).toBe(200);
    const tomb = await putState(bob, roomId, 'm.room.tombstone', { body: 'x', replacement_room: roomId });
    expect(tomb.status).toBe(403);
    await send(carol, roomId, 'carol is a creator');
  });

  it('sync shows the room with its create event; the PDU has no room_id', async () => {
    const s = await c(alice).get(`${V3}/sync?filter=${enc(JSON.stringify({ room: { timeline: { limit: 50 } } }))}`);
    expect(s.status).toBe(200);
    const room = s.body.rooms.join[roomId];
    expect(room).toBeDefined();
    const events = [...(room.state?.events ?? []), ...(room.timeline?.events ?? [])];
    const create = events.find((e: any) => e.type === 'm.room.create');
    expect(create).toBeDefined();
    expect(create.event_id).toBe('$' + roomId.slice(1));
    expect(create.content.room_version).toBe('12');
    const bodies = (room.timeline.events as any[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
    expect(bodies).toEqual(expect.arrayContaining(['hello from alice', 'hello from bob', 'carol is a creator']));
    // The federation format is the stored PDU.
    const fed = await c(alice).get(`${V3}/sync?filter=${enc(JSON.stringify({ event_format: 'federation', room: { timeline: { limit: 50 } } }))}`);
    const fr = fed.body.rooms.join[roomId];
    const pdus = [...(fr.state?.events ?? []), ...(fr.timeline?.events ?? [])];
    const createPdu = pdus.find((e: any) => e.type === 'm.room.create');
    expect(createPdu).toBeDefined();
    expect('room_id' in createPdu).toBe(false);
    const msg = pdus.find((e: any) => e.type === 'm.room.message');
    expect(msg.room_id).toBe(roomId);
    expect(msg.auth_events).not.toContain('$' + roomId.slice(1));
    // An incremental sync from another member sees new messages.
    const since = (await c(bob).get(`${V3}/sync`)).body.next_batch;
    await send(alice, roomId, 'after since');
    let found = false;
    let next = since;
    for (let i = 0; i < 5 && !found; i++) {
      const inc = await c(bob).get(`${V3}/sync?since=${enc(next)}&timeout=10000`);
      next = inc.body.next_batch;
      found = (inc.body.rooms?.join?.[roomId]?.timeline?.events ?? []).some((e: any) => e.content?.body === 'after since');
    }
    expect(found).toBe(true);
  });

  it('/messages paginates back to the create event, under its room', async () => {
    let from: string | undefined;
    const seen: any[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await c(bob).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=3${from ? `&from=${enc(from)}` : ''}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      seen.push(...r.body.chunk);
      if (!r.body.end || r.body.chunk.length === 0) break;
      from = r.body.end;
    }
    const create = seen.find((e) => e.type === 'm.room.create');
    expect(create).toBeDefined();
    expect(create.room_id).toBe(roomId);
    expect(create.event_id).toBe('$' + roomId.slice(1));
    expect(seen.every((e) => e.room_id === roomId)).toBe(true);
    expect(seen.filter((e) => e.type === 'm.room.message').map((e) => e.content.body)).toEqual(
      expect.arrayContaining(['hello from alice', 'hello from bob']),
    );
    const ctx = await c(bob).get(`${V3}/rooms/${enc(roomId)}/context/${enc(create.event_id)}?limit=2`);
    expect([ctx.status, ctx.body.event.room_id]).toEqual([200, roomId]);
  });

  it('upgrades a v10 room to v12: tombstone, predecessor, creator out of power levels', async () => {
    const old = await createRoom(alice, { room_version: '10', preset: 'public_chat', name: 'Old', topic: 'Topic' });
    expect((await c(bob).post(`${V3}/join/${enc(old)}`, {})).status).toBe(200);
    const oldPl = (await state(alice, old))['m.room.power_levels|'].content;
    expect((await putState(alice, old, 'm.room.power_levels', { ...oldPl, users: { ...oldPl.users, [bob.userId]: 50 } })).status).toBe(200);
    const up = await c(alice).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: '12' });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    const neu = up.body.replacement_room as string;
    expect(neu).toMatch(HASH_ROOM_ID);
    const os = await state(alice, old);
    expect(os['m.room.tombstone|'].content.replacement_room).toBe(neu);
    const ns = await state(alice, neu);
    expect(ns['m.room.create|'].event_id).toBe('$' + neu.slice(1));
    expect(ns['m.room.create|'].content).toMatchObject({ room_version: '12', predecessor: { room_id: old } });
    expect(ns['m.room.power_levels|'].content.users).toEqual({ [bob.userId]: 50 });
    expect(ns['m.room.name|'].content.name).toBe('Old');
    expect(ns['m.room.topic|'].content.topic).toBe('Topic');
    await send(alice, neu, 'in the upgraded room');
    expect((await c(bob).post(`${V3}/join/${enc(neu)}`, {})).status).toBe(200);
    await send(bob, neu, 'bob followed');
    // v12 -> v12 with additional creators (not copied: named in the request).
    const bad = await c(alice).post(`${V3}/rooms/${enc(neu)}/upgrade`, { new_version: '12', additional_creators: ['bob'] });
    expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const notList = await c(alice).post(`${V3}/rooms/${enc(neu)}/upgrade`, { new_version: '12', additional_creators: bob.userId });
    expect([notList.status, notList.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    const again = await c(alice).post(`${V3}/rooms/${enc(neu)}/upgrade`, { new_version: '12', additional_creators: [bob.userId] });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const third = again.body.replacement_room as string;
    expect(third).toMatch(HASH_ROOM_ID);
    const ts = await state(alice, third);
    expect(ts['m.room.create|'].content).toMatchObject({ room_version: '12', predecessor: { room_id: neu }, additional_creators: [bob.userId] });
    expect(ts['m.room.power_levels|'].content.users).toEqual({});
    expect((await c(bob).post(`${V3}/join/${enc(third)}`, {})).status).toBe(200);
    const bobTomb = await putState(bob, third, 'm.room.tombstone', { body: 'bob can', replacement_room: third });
    expect(bobTomb.status, JSON.stringify(bobTomb.body)).toBe(200);
    // Upgrading to a pre-v12 version ignores additional_creators.
    const v11 = await createRoom(alice, { room_version: '10' });
    const down = await c(alice).post(`${V3}/rooms/${enc(v11)}/upgrade`, { new_version: '11', additional_creators: [bob.userId] });
    expect(down.status, JSON.stringify(down.body)).toBe(200);
    expect((await state(alice, down.body.replacement_room))['m.room.create|'].content.additional_creators).toBeUndefined();
  });
});
