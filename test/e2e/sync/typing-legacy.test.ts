import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { createRoom, join, send, sync, syncUntil, user, type U } from './helpers.js';

const typingOf = (res: any, roomId: string): string[] | undefined =>
  res.rooms?.join?.[roomId]?.ephemeral?.events?.find((e: any) => e.type === 'm.typing')?.content.user_ids;

const putTyping = (u: U, roomId: string, body: Record<string, unknown>, userId = u.userId) =>
  u.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(userId)}`, body);

describeShapes('sync: typing and legacy endpoints', (server) => {
  it('typing reaches the other user live, stops, and expires', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    let tok = (await sync(b)).next_batch;

    const hasTyping = (r: any) => typingOf(r, roomId) !== undefined;
    const poll = syncUntil(b, tok, hasTyping);
    await new Promise((r) => setTimeout(r, 100));
    expect((await putTyping(a, roomId, { typing: true, timeout: 30000 })).status).toBe(200);
    let res = await poll;
    expect(typingOf(res, roomId)).toEqual([a.userId]);
    tok = res.next_batch;

    // stop typing: the list empties
    await putTyping(a, roomId, { typing: false });
    res = await syncUntil(b, tok, hasTyping);
    expect(typingOf(res, roomId)).toEqual([]);
    tok = res.next_batch;

    // expiry: a short timeout ends by itself and wakes the long-poll
    await putTyping(a, roomId, { typing: true, timeout: 300 });
    res = await syncUntil(b, tok, hasTyping);
    expect(typingOf(res, roomId)).toEqual([a.userId]);
    res = await syncUntil(b, res.next_batch, hasTyping);
    expect(typingOf(res, roomId)).toEqual([]);
  });

  it('typing is only for yourself and only in rooms you are in', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a);
    let r = await putTyping(a, roomId, { typing: true }, b.userId);
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
    r = await putTyping(b, roomId, { typing: true });
    expect(r.status).toBe(403);
    r = await putTyping(a, roomId, {});
    expect(r.status).toBe(400);
    r = await putTyping(a, roomId, { typing: 'yes' });
    expect(r.body.errcode).toBe('M_BAD_JSON');
  });

  it('GET /events long-polls for new events from a token', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const first = await b.c.get('/_matrix/client/v3/events?timeout=0');
    expect(first.status).toBe(200);
    expect(typeof first.body.end).toBe('string');
    const poll = b.c.get(`/_matrix/client/v3/events?from=${enc(first.body.end)}&timeout=30000`);
    await new Promise((r) => setTimeout(r, 100));
    await send(a, roomId, 'legacy');
    const res = await poll;
    expect(res.status).toBe(200);
    const msg = res.body.chunk.find((e: any) => e.type === 'm.room.message');
    expect(msg.content.body).toBe('legacy');
    expect(msg.room_id).toBe(roomId);
    const after = await b.c.get(`/_matrix/client/v3/events?from=${enc(res.body.end)}&timeout=200`);
    expect(after.body.chunk).toEqual([]);
    const bad = await b.c.get('/_matrix/client/v3/events?from=nonsense');
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('GET /initialSync and /rooms/{roomId}/initialSync', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { name: 'Legacy' });
    await send(a, roomId, 'hello legacy');
    const r = await a.c.get('/_matrix/client/v3/initialSync?limit=5');
    expect(r.status).toBe(200);
    const room = r.body.rooms.find((x: any) => x.room_id === roomId);
    expect(room.membership).toBe('join');
    expect(room.messages.chunk.some((e: any) => e.content.body === 'hello legacy' && e.room_id === roomId)).toBe(true);
    expect(room.state.some((e: any) => e.type === 'm.room.name' && e.content.name === 'Legacy')).toBe(true);
    expect(typeof r.body.end).toBe('string');

    const one = await a.c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/initialSync`);
    expect(one.status).toBe(200);
    expect(one.body.room_id).toBe(roomId);
    expect(one.body.membership).toBe('join');
    expect(one.body.messages.chunk.some((e: any) => e.content.body === 'hello legacy')).toBe(true);
    expect(one.body.state.some((e: any) => e.type === 'm.room.create')).toBe(true);

    const stranger = await b.c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/initialSync`);
    expect(stranger.status).toBe(403);
  });

  it('to-device messages arrive through sync and are not repeated after acknowledgement', async () => {
    const a = await user(server());
    const b = await user(server());
    const t0 = (await sync(b)).next_batch;
    const put = await a.c.put(`/_matrix/client/v3/sendToDevice/org.example.ping/txn${Date.now()}`, {
      messages: { [b.userId]: { [b.deviceId]: { n: 1 } } },
    });
    expect(put.status).toBe(200);
    const r1 = await sync(b, { since: t0 });
    expect(r1.to_device.events.map((e: any) => e.content.n)).toEqual([1]);
    // the same token again (response lost): delivered again
    expect((await sync(b, { since: t0 })).to_device.events.length).toBe(1);
    // acknowledged by the next since: gone
    const r2 = await sync(b, { since: r1.next_batch });
    expect(r2.to_device?.events ?? []).toEqual([]);
  });
});
