import { beforeAll, expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { room, send, sync, user, type U } from './helpers.js';

const v3 = '/_matrix/client/v3';

describeShapes('receipts, unread counts and notifications', (server) => {
  let alice: U;
  let bob: U;
  let carol: U;
  let roomId: string;

  beforeAll(async () => {
    alice = await user(server());
    bob = await user(server());
    carol = await user(server());
    roomId = await room(alice, bob, carol);
  });

  const receipt = (u: U, type: string, eventId: string, body: unknown = {}, r = roomId) =>
    u.c.post(`${v3}/rooms/${enc(r)}/receipt/${type}/${enc(eventId)}`, body);

  it('rejects bad receipts', async () => {
    const ev = await send(alice, roomId, { msgtype: 'm.text', body: 'receipt target' });
    const unknownType = await receipt(bob, 'm.seen', ev);
    expect(unknownType.status).toBe(400);
    const missing = await receipt(bob, 'm.read', '$nope:example.org');
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    for (const thread_id of ['', 5, 'not-an-event']) {
      const res = await receipt(bob, 'm.read', ev, { thread_id });
      expect(res.status).toBe(400);
    }
    const fr = await receipt(bob, 'm.fully_read', ev, { thread_id: 'main' });
    expect(fr.status).toBe(400);
    // An event that is not in the given thread.
    const other = await send(alice, roomId, { msgtype: 'm.text', body: 'other' });
    const wrongThread = await receipt(bob, 'm.read', ev, { thread_id: other });
    expect(wrongThread.status).toBe(400);
    // Not joined.
    const stranger = await user(server());
    const res = await receipt(stranger, 'm.read', ev);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    // An event of another room.
    const room2 = await room(alice, bob);
    const ev2 = await send(alice, room2, { msgtype: 'm.text', body: 'elsewhere' });
    expect((await receipt(bob, 'm.read', ev2)).status).toBe(404);
    // Bad read marker bodies.
    const rm = await bob.c.post(`${v3}/rooms/${enc(roomId)}/read_markers`, { 'm.fully_read': 42 });
    expect(rm.status).toBe(400);
    expect(rm.body.errcode).toBe('M_BAD_JSON');
  });

  it('delivers public receipts to the room and private ones only to their owner', async () => {
    const ev = await send(alice, roomId, { msgtype: 'm.text', body: 'read me' });
    const a0 = await sync(alice);
    const c0 = await sync(carol);
    expect((await receipt(bob, 'm.read', ev)).status).toBe(200);
    const a1 = await sync(alice, a0.next_batch);
    const r = (a1.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.receipt');
    expect(r?.content?.[ev]?.['m.read']?.[bob.userId]?.ts).toEqual(expect.any(Number));

    const ev2 = await send(alice, roomId, { msgtype: 'm.text', body: 'read privately' });
    const b0 = await sync(bob);
    const a2s = await sync(alice);
    expect((await receipt(carol, 'm.read.private', ev2)).status).toBe(200);
    const mine = await sync(carol, c0.next_batch);
    const mineR = (mine.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.receipt');
    expect(mineR?.content?.[ev2]?.['m.read.private']?.[carol.userId]).toBeDefined();
    const theirs = await sync(bob, b0.next_batch);
    const theirsR = (theirs.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.receipt');
    expect(theirsR?.content?.[ev2]?.['m.read.private']).toBeUndefined();
    const init = await sync(alice);
    const initR = (init.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.receipt');
    expect(JSON.stringify(initR ?? {})).not.toContain('m.read.private');
    void a2s;
  });

  it('threaded receipts carry thread_id', async () => {
    const root = await send(alice, roomId, { msgtype: 'm.text', body: 'thread root' });
    const inThread = await send(alice, roomId, { msgtype: 'm.text', body: 'reply', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const b0 = await sync(bob);
    expect((await receipt(carol, 'm.read', inThread, { thread_id: root })).status).toBe(200);
    expect((await receipt(carol, 'm.read', root, { thread_id: 'main' })).status).toBe(200);
    const b1 = await sync(bob, b0.next_batch);
    const r = (b1.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.receipt');
    expect(r?.content?.[inThread]?.['m.read']?.[carol.userId]?.thread_id).toBe(root);
    expect(r?.content?.[root]?.['m.read']?.[carol.userId]?.thread_id).toBe('main');
  });

  it('unread counts rise with messages from others and fall after a receipt', async () => {
    const dm = await room(alice, bob);
    const b0 = await sync(bob);
    expect(b0.rooms.join[dm].unread_notifications).toEqual({ notification_count: 0, highlight_count: 0 });
    await send(alice, dm, { msgtype: 'm.text', body: 'one' });
    const last = await send(alice, dm, { msgtype: 'm.text', body: `two, ${bob.localpart}!` });
    await send(bob, dm, { msgtype: 'm.text', body: 'my own message does not count' });
    const b1 = await sync(bob, b0.next_batch);
    expect(b1.rooms.join[dm].unread_notifications).toEqual({ notification_count: 2, highlight_count: 1 });
    // Alice's own messages do not count for her.
    expect((await sync(alice)).rooms.join[dm].unread_notifications.notification_count).toBe(1);
    expect((await receipt(bob, 'm.read', last, {}, dm)).status).toBe(200);
    const b2 = await sync(bob, b1.next_batch);
    expect(b2.rooms.join[dm].unread_notifications).toEqual({ notification_count: 0, highlight_count: 0 });
    // A private receipt clears too.
    const n = await send(alice, dm, { msgtype: 'm.text', body: 'three' });
    expect((await sync(bob)).rooms.join[dm].unread_notifications.notification_count).toBe(1);
    expect((await bob.c.post(`${v3}/rooms/${enc(dm)}/read_markers`, { 'm.fully_read': n, 'm.read.private': n })).status).toBe(200);
    expect((await sync(bob)).rooms.join[dm].unread_notifications.notification_count).toBe(0);
    // m.fully_read landed in room account data.
    const fr = await bob.c.get(`${v3}/user/${enc(bob.userId)}/rooms/${enc(dm)}/account_data/m.fully_read`);
    expect(fr.body).toEqual({ event_id: n });
  });

  it('counts threads separately when asked, cleared by threaded receipts', async () => {
    const r = await room(alice, bob);
    const root = await send(alice, r, { msgtype: 'm.text', body: 'root' });
    const t1 = await send(alice, r, { msgtype: 'm.text', body: 't1', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    await send(alice, r, { msgtype: 'm.text', body: 't2', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const filter = `&filter=${enc(JSON.stringify({ room: { timeline: { unread_thread_notifications: true } } }))}`;
    const s = await sync(bob, undefined, filter);
    expect(s.rooms.join[r].unread_notifications.notification_count).toBe(1);
    expect(s.rooms.join[r].unread_thread_notifications?.[root]?.notification_count).toBe(2);
    // Without the filter everything is in the room count.
    expect((await sync(bob)).rooms.join[r].unread_notifications.notification_count).toBe(3);
    expect((await receipt(bob, 'm.read', t1, { thread_id: root }, r)).status).toBe(200);
    const s2 = await sync(bob, undefined, filter);
    expect(s2.rooms.join[r].unread_thread_notifications?.[root]?.notification_count).toBe(1);
    expect(s2.rooms.join[r].unread_notifications.notification_count).toBe(1);
  });

  it('lists notifications', async () => {
    const r = await room(alice, carol);
    await send(alice, r, { msgtype: 'm.text', body: 'plain' });
    const hl = await send(alice, r, { msgtype: 'm.text', body: 'hi', 'm.mentions': { user_ids: [carol.userId] } });
    const all = await carol.c.get(`${v3}/notifications?limit=50`);
    expect(all.status).toBe(200);
    const inRoom = all.body.notifications.filter((n: any) => n.room_id === r);
    expect(inRoom.length).toBe(2);
    expect(inRoom[0].event.event_id).toBe(hl); // newest first
    expect(inRoom[0].event.content.body).toBe('hi');
    expect(inRoom[0].read).toBe(false);
    expect(inRoom[0].actions).toContainEqual({ set_tweak: 'highlight' });
    const only = await carol.c.get(`${v3}/notifications?only=highlight`);
    expect(only.body.notifications.map((n: any) => n.event.event_id)).toContain(hl);
    expect(only.body.notifications.every((n: any) => n.actions.some((a: any) => a.set_tweak === 'highlight'))).toBe(true);
    const page = await carol.c.get(`${v3}/notifications?limit=1`);
    expect(page.body.notifications.length).toBe(1);
    expect(page.body.next_token).toEqual(expect.any(String));
    const next = await carol.c.get(`${v3}/notifications?limit=1&from=${enc(page.body.next_token)}`);
    expect(next.body.notifications[0].event.event_id).not.toBe(page.body.notifications[0].event.event_id);
    expect((await receipt(carol, 'm.read', hl, {}, r)).status).toBe(200);
    const after = await carol.c.get(`${v3}/notifications?limit=50`);
    expect(after.body.notifications.find((n: any) => n.event.event_id === hl).read).toBe(true);
    expect((await carol.c.get(`${v3}/notifications?from=xyz`)).status).toBe(400);
    expect((await carol.c.get(`${v3}/notifications?limit=abc`)).status).toBe(400);
  });
});
