import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { bodies, createRoom, join, send, sync, user } from './helpers.js';

describeShapes('sync: filters', (server) => {
  it('timeline limit, types, not_types (wildcards), senders, not_senders', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const t0 = (await sync(a)).next_batch;
    await send(a, roomId, 'from a');
    await send(b, roomId, 'from b');
    await send(a, roomId, { hello: 1 }, 'org.example.custom');
    const types = (res: any) => res.rooms.join[roomId].timeline.events.map((e: any) => e.type);

    expect(types(await sync(a, { since: t0, filter: { room: { timeline: { types: ['org.*'] } } } }))).toEqual(['org.example.custom']);
    expect(types(await sync(a, { since: t0, filter: { room: { timeline: { not_types: ['m.room.*'] } } } }))).toEqual(['org.example.custom']);
    expect(bodies(await sync(a, { since: t0, filter: { room: { timeline: { senders: [b.userId] } } } }), roomId)).toEqual(['from b']);
    expect(bodies(await sync(a, { since: t0, filter: { room: { timeline: { not_senders: [b.userId] } } } }), roomId)).toEqual(['from a']);
    const lim = await sync(a, { since: t0, filter: { room: { timeline: { limit: 1 } } } });
    expect(types(lim)).toEqual(['org.example.custom']);
    expect(lim.rooms.join[roomId].timeline.limited).toBe(true);
  });

  it('contains_url', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    const t0 = (await sync(a)).next_batch;
    await send(a, roomId, { msgtype: 'm.image', body: 'pic', url: 'mxc://x/y' });
    await send(a, roomId, 'text');
    expect(bodies(await sync(a, { since: t0, filter: { room: { timeline: { contains_url: true } } } }), roomId)).toEqual(['pic']);
    expect(bodies(await sync(a, { since: t0, filter: { room: { timeline: { contains_url: false } } } }), roomId)).toEqual(['text']);
  });

  it('rooms / not_rooms on the room filter', async () => {
    const a = await user(server());
    const r1 = await createRoom(a);
    const r2 = await createRoom(a);
    const only1 = await sync(a, { filter: { room: { rooms: [r1] } } });
    expect(Object.keys(only1.rooms.join)).toEqual([r1]);
    const not1 = await sync(a, { filter: { room: { not_rooms: [r1] } } });
    expect(Object.keys(not1.rooms.join)).toEqual([r2]);
  });

  it('state filter types and a stored filter by id', async () => {
    const a = await user(server());
    const roomId = await createRoom(a, { name: 'N' });
    const created = await a.c.post(`/_matrix/client/v3/user/${enc(a.userId)}/filter`, {
      room: { state: { types: ['m.room.name'] }, timeline: { types: ['org.example.none'] } },
    });
    expect(created.status).toBe(200);
    const res = await sync(a, { filter: created.body.filter_id });
    const room = res.rooms.join[roomId];
    expect(room.timeline.events).toEqual([]);
    expect(room.state.events.map((e: any) => e.type)).toEqual(['m.room.name']);
  });

  it('lazy_load_members sends only the members of timeline senders, and redundant ones only on request', async () => {
    const a = await user(server());
    const b = await user(server());
    const c = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    await join(c, roomId);
    await send(b, roomId, 'b speaks');
    const lazy = { room: { state: { lazy_load_members: true }, timeline: { limit: 1 } } };
    const members = (res: any) => res.rooms.join[roomId].state.events.filter((e: any) => e.type === 'm.room.member').map((e: any) => e.state_key).sort();
    // without lazy loading: everyone
    expect(members(await sync(a, { filter: { room: { timeline: { limit: 1 } } } }))).toEqual([a.userId, b.userId, c.userId].sort());
    const r1 = await sync(a, { filter: lazy });
    expect(members(r1)).toEqual([a.userId, b.userId].sort());
    expect(r1.rooms.join[roomId].summary['m.joined_member_count']).toBe(3);

    await send(b, roomId, 'b again');
    const r2 = await sync(a, { since: r1.next_batch, filter: lazy });
    expect(bodies(r2, roomId)).toEqual(['b again']);
    expect(members(r2)).toEqual([]); // b's member event was already sent
    const redundant = { room: { state: { lazy_load_members: true, include_redundant_members: true }, timeline: { limit: 1 } } };
    await send(b, roomId, 'b thrice');
    const r3 = await sync(a, { since: r2.next_batch, filter: redundant });
    expect(members(r3)).toContain(b.userId);
  });

  it('account_data and presence filters with types: [] leave those sections empty', async () => {
    const a = await user(server());
    await a.c.put(`/_matrix/client/v3/user/${enc(a.userId)}/account_data/org.example.x`, { v: 1 });
    const full = await sync(a);
    expect(full.account_data.events.some((e: any) => e.type === 'org.example.x')).toBe(true);
    const none = await sync(a, { filter: { account_data: { types: [] }, presence: { types: [] } } });
    expect(none.account_data.events).toEqual([]);
    if (none.presence) expect(none.presence.events).toEqual([]);
    const only = await sync(a, { filter: { account_data: { types: ['org.example.*'] } } });
    expect(only.account_data.events.map((e: any) => e.type)).toEqual(['org.example.x']);
  });

  it('ephemeral filter drops typing', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    await a.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(a.userId)}`, { typing: true, timeout: 10000 });
    const withTyping = await sync(a);
    expect(withTyping.rooms.join[roomId].ephemeral.events.some((e: any) => e.type === 'm.typing')).toBe(true);
    const without = await sync(a, { filter: { room: { ephemeral: { not_types: ['m.typing'] } } } });
    expect(without.rooms.join[roomId].ephemeral.events).toEqual([]);
  });

  it('event_fields projection', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    await send(a, roomId, 'proj');
    const res = await sync(a, { filter: { event_fields: ['type', 'content.body'], room: { timeline: { types: ['m.room.message'] } } } });
    expect(res.rooms.join[roomId].timeline.events).toEqual([{ type: 'm.room.message', content: { body: 'proj' } }]);
  });

  it('ignored users: their messages and invites are hidden', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const r = await a.c.put(`/_matrix/client/v3/user/${enc(a.userId)}/account_data/m.ignored_user_list`, { ignored_users: { [b.userId]: {} } });
    expect(r.status).toBe(200);
    const t0 = (await sync(a)).next_batch;
    await send(b, roomId, 'ignored');
    await send(a, roomId, 'mine');
    expect(bodies(await sync(a, { since: t0 }), roomId)).toEqual(['mine']);
    const other = await createRoom(b);
    await b.c.post(`/_matrix/client/v3/rooms/${enc(other)}/invite`, { user_id: a.userId });
    const res = await sync(a);
    expect(res.rooms.invite?.[other]).toBeUndefined();
    // state events of ignored users still arrive
    expect(res.rooms.join[roomId].state.events.concat(res.rooms.join[roomId].timeline.events).some((e: any) => e.type === 'm.room.member' && e.state_key === b.userId)).toBe(true);
  });
});
