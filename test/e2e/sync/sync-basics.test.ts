import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { bodies, createRoom, invite, join, send, sync, user } from './helpers.js';

describeShapes('sync: initial and incremental', (server) => {
  it('initial sync has the room with state, timeline, summary and a next_batch', async () => {
    const a = await user(server());
    const roomId = await createRoom(a, { name: 'Hello room' });
    await send(a, roomId, 'first');
    const res = await sync(a);
    expect(typeof res.next_batch).toBe('string');
    const room = res.rooms.join[roomId];
    expect(room).toBeDefined();
    expect(bodies(res, roomId)).toEqual(['first']);
    const all = [...room.state.events, ...room.timeline.events];
    expect(all.some((e: any) => e.type === 'm.room.create')).toBe(true);
    expect(all.some((e: any) => e.type === 'm.room.name' && e.content.name === 'Hello room')).toBe(true);
    // state and timeline do not overlap
    const stateIds = new Set(room.state.events.map((e: any) => e.event_id));
    expect(room.timeline.events.some((e: any) => stateIds.has(e.event_id))).toBe(false);
    expect(room.summary['m.joined_member_count']).toBe(1);
    expect(room.timeline.events.every((e: any) => e.room_id === undefined && typeof e.unsigned?.age === 'number')).toBe(true);
    expect(typeof room.timeline.prev_batch).toBe('string');
  });

  it('incremental sync returns exactly the new event, then nothing', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    const first = await sync(a);
    await send(a, roomId, 'second');
    const inc = await sync(a, { since: first.next_batch });
    expect(bodies(inc, roomId)).toEqual(['second']);
    expect(inc.rooms.join[roomId].timeline.limited).toBe(false);
    expect(inc.rooms.join[roomId].state.events).toEqual([]);
    // the sender's own device sees its transaction id
    expect(inc.rooms.join[roomId].timeline.events[0].unsigned.transaction_id).toBeDefined();
    const again = await sync(a, { since: inc.next_batch });
    expect(again.rooms?.join?.[roomId]).toBeUndefined();
  });

  it('a long-poll is woken by another user sending', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const start = await sync(b);
    // The long-poll may also return for other streams (b's own presence going
    // online, say); keep polling until the message arrives. If nothing woke
    // the poll for the message, it would only return after its 30 s timeout
    // and the test would time out.
    const poll = (async () => {
      const seen: string[] = [];
      let since = start.next_batch;
      for (let i = 0; i < 10 && !seen.includes('wake up'); i++) {
        const res = await sync(b, { since, timeout: 30000 });
        seen.push(...bodies(res, roomId));
        since = res.next_batch;
      }
      return seen;
    })();
    await new Promise((r) => setTimeout(r, 200));
    await send(a, roomId, 'wake up');
    expect(await poll).toEqual(['wake up']);
  });

  it('an expired long-poll returns an empty response with a usable next_batch', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    const start = await sync(a);
    const res = await sync(a, { since: start.next_batch, timeout: 300 });
    expect(typeof res.next_batch).toBe('string');
    expect(res.rooms?.join?.[roomId]).toBeUndefined();
    await send(a, roomId, 'after');
    expect(bodies(await sync(a, { since: res.next_batch }), roomId)).toEqual(['after']);
  });

  it('an old token gets exactly what was missed, exactly once', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const t0 = (await sync(b)).next_batch;
    for (const m of ['m1', 'm2', 'm3']) await send(a, roomId, m);
    const r1 = await sync(b, { since: t0 });
    expect(bodies(r1, roomId)).toEqual(['m1', 'm2', 'm3']);
    // the same old token again gives the same answer (nothing lost if a response was lost)
    expect(bodies(await sync(b, { since: t0 }), roomId)).toEqual(['m1', 'm2', 'm3']);
    await send(a, roomId, 'm4');
    expect(bodies(await sync(b, { since: r1.next_batch }), roomId)).toEqual(['m4']);
  });

  it('a limited timeline has a prev_batch that /messages accepts', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    const t0 = (await sync(a)).next_batch;
    for (let i = 0; i < 6; i++) await send(a, roomId, `n${i}`);
    const res = await sync(a, { since: t0, filter: { room: { timeline: { limit: 2 } } } });
    const room = res.rooms.join[roomId];
    expect(room.timeline.limited).toBe(true);
    expect(bodies(res, roomId)).toEqual(['n4', 'n5']);
    const msgs = await a.c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=3&from=${enc(room.timeline.prev_batch)}`);
    expect(msgs.status).toBe(200);
    expect(msgs.body.chunk.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body)).toEqual(['n3', 'n2', 'n1']);
  });

  it('refuses garbage and future tokens quickly with M_INVALID_PARAM', async () => {
    const a = await user(server());
    for (const since of ['garbage', 's1_x', 's1_999999999_0_0_0_0_0_0_0']) {
      const r = await a.c.get(`/_matrix/client/v3/sync?since=${enc(since)}&timeout=30000`);
      expect(r.status).toBe(400);
      expect(r.body.errcode).toBe('M_INVALID_PARAM');
    }
    const bad = await a.c.get('/_matrix/client/v3/sync?timeout=abc');
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('bad filters get M_BAD_JSON / M_INVALID_PARAM', async () => {
    const a = await user(server());
    let r = await a.c.get(`/_matrix/client/v3/sync?filter=${enc('{not json')}`);
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_BAD_JSON');
    r = await a.c.get(`/_matrix/client/v3/sync?filter=${enc(JSON.stringify({ room: { timeline: { limit: 'x' } } }))}`);
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_BAD_JSON');
    r = await a.c.get('/_matrix/client/v3/sync?filter=987654');
    expect(r.status).toBe(400);
    expect(r.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('invite, join, leave sections', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { name: 'Invite me' });
    const t0 = (await sync(b)).next_batch;
    await invite(a, roomId, b.userId);
    const r1 = await sync(b, { since: t0 });
    const inv = r1.rooms.invite[roomId];
    expect(inv).toBeDefined();
    const types = inv.invite_state.events.map((e: any) => e.type);
    expect(types).toContain('m.room.create');
    expect(types).toContain('m.room.name');
    expect(inv.invite_state.events.some((e: any) => e.type === 'm.room.member' && e.state_key === b.userId && e.content.membership === 'invite')).toBe(true);
    // initial sync shows the invite too
    expect((await sync(b)).rooms.invite[roomId]).toBeDefined();

    await join(b, roomId);
    const r2 = await sync(b, { since: r1.next_batch });
    const joined = r2.rooms.join[roomId];
    expect(joined).toBeDefined();
    // newly joined: full state
    expect([...joined.state.events, ...joined.timeline.events].some((e: any) => e.type === 'm.room.create')).toBe(true);
    expect(r2.rooms.invite?.[roomId]).toBeUndefined();

    await send(a, roomId, 'before leave');
    const lv = await b.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {});
    expect(lv.status).toBe(200);
    await send(a, roomId, 'after leave');
    const r3 = await sync(b, { since: r2.next_batch });
    const left = r3.rooms.leave[roomId];
    expect(left).toBeDefined();
    const tl = left.timeline.events;
    expect(tl.map((e: any) => e.content.body).filter(Boolean)).toEqual(['before leave']);
    expect(tl[tl.length - 1].type).toBe('m.room.member');
    expect(tl[tl.length - 1].content.membership).toBe('leave');
    expect(r3.rooms.join?.[roomId]).toBeUndefined();
    // initial sync: left rooms only with include_leave
    expect((await sync(b)).rooms.leave?.[roomId]).toBeUndefined();
    expect((await sync(b, { filter: { room: { include_leave: true } } })).rooms.leave[roomId]).toBeDefined();
  });

  it('knock section', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { room_version: '10', initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] });
    const t0 = (await sync(b)).next_batch;
    const k = await b.c.post(`/_matrix/client/v3/knock/${enc(roomId)}`, {});
    expect(k.status).toBe(200);
    const r = await sync(b, { since: t0 });
    const kn = r.rooms.knock[roomId];
    expect(kn).toBeDefined();
    expect(kn.knock_state.events.some((e: any) => e.type === 'm.room.member' && e.state_key === b.userId && e.content.membership === 'knock')).toBe(true);
    expect(kn.knock_state.events.some((e: any) => e.type === 'm.room.join_rules')).toBe(true);
  });
});
