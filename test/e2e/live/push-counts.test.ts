/**
 * Unread counts and notifications from the per-event default outcome plus
 * per-member exceptions: who counts an event and who does not.
 */
import { beforeAll, expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { room, send, sync, user, type U } from './helpers.js';

const v3 = '/_matrix/client/v3';
const THREADS = `&filter=${enc(JSON.stringify({ room: { timeline: { unread_thread_notifications: true } } }))}`;

describeShapes('push: default outcome and exceptions', (server) => {
  let alice: U;
  let bob: U;
  let carol: U;

  beforeAll(async () => {
    alice = await user(server());
    bob = await user(server());
    carol = await user(server());
  });

  const counts = async (u: U, roomId: string) => (await sync(u)).rooms.join[roomId].unread_notifications;
  const receipt = (u: U, roomId: string, eventId: string, body: unknown = {}, type = 'm.read') =>
    u.c.post(`${v3}/rooms/${enc(roomId)}/receipt/${type}/${enc(eventId)}`, body);
  const notifications = async (u: U, q = 'limit=100') => {
    const res = await u.c.get(`${v3}/notifications?${q}`);
    expect(res.status).toBe(200);
    return res.body;
  };

  it('a mention highlights only the mentioned user; the others get the default', async () => {
    const r = await room(alice, bob, carol);
    const ev = await send(alice, r, { msgtype: 'm.text', body: 'for bob', 'm.mentions': { user_ids: [bob.userId] } });
    expect(await counts(bob, r)).toEqual({ notification_count: 1, highlight_count: 1 });
    expect(await counts(carol, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    expect(await counts(alice, r)).toEqual({ notification_count: 0, highlight_count: 0 });
    // A legacy mention (no m.mentions) of Carol's localpart highlights her only.
    await send(alice, r, { msgtype: 'm.text', body: `hey ${carol.localpart}, look` });
    expect(await counts(bob, r)).toEqual({ notification_count: 2, highlight_count: 1 });
    expect(await counts(carol, r)).toEqual({ notification_count: 2, highlight_count: 1 });
    // Notifications: the mention carries the highlight tweak for Bob, not for Carol.
    const b = (await notifications(bob)).notifications.find((n: any) => n.event.event_id === ev);
    const c = (await notifications(carol)).notifications.find((n: any) => n.event.event_id === ev);
    expect(b.actions).toContainEqual({ set_tweak: 'highlight' });
    expect(c.actions).toEqual(['notify']);
    const onlyBob = await notifications(bob, 'only=highlight&limit=100');
    expect(onlyBob.notifications.map((n: any) => n.event.event_id)).toContain(ev);
    expect((await notifications(carol, 'only=highlight&limit=100')).notifications.map((n: any) => n.event.event_id)).not.toContain(ev);
    // The sender is never notified of their own events.
    expect((await notifications(alice)).notifications.some((n: any) => n.room_id === r)).toBe(false);
  });

  it('an @room from a moderator highlights everyone but the sender', async () => {
    const r = await room(alice, bob, carol);
    await send(alice, r, { msgtype: 'm.text', body: 'all hands', 'm.mentions': { room: true } });
    expect(await counts(bob, r)).toEqual({ notification_count: 1, highlight_count: 1 });
    expect(await counts(carol, r)).toEqual({ notification_count: 1, highlight_count: 1 });
    expect(await counts(alice, r)).toEqual({ notification_count: 0, highlight_count: 0 });
    // Bob (power level 0) cannot notify the room: his @room is a plain message.
    await send(bob, r, { msgtype: 'm.text', body: 'me too', 'm.mentions': { room: true } });
    expect(await counts(carol, r)).toEqual({ notification_count: 2, highlight_count: 1 });
    expect(await counts(alice, r)).toEqual({ notification_count: 1, highlight_count: 0 });
  });

  it('a user whose rule silences the room gets no count while the others do', async () => {
    const r = await room(alice, bob, carol);
    expect((await bob.c.put(`${v3}/pushrules/global/room/${enc(r)}`, { actions: ['dont_notify'] })).status).toBe(200);
    const ev = await send(alice, r, { msgtype: 'm.text', body: 'muted for bob' });
    expect(await counts(bob, r)).toEqual({ notification_count: 0, highlight_count: 0 });
    expect(await counts(carol, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    expect((await notifications(bob)).notifications.some((n: any) => n.event.event_id === ev)).toBe(false);
    expect((await notifications(carol)).notifications.some((n: any) => n.event.event_id === ev)).toBe(true);
    // A rule that notifies where the default does not (reactions) counts for its owner only.
    expect((await carol.c.put(`${v3}/pushrules/global/override/reactions`, {
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }],
      actions: ['notify'],
    })).status).toBe(200);
    const reaction = await send(alice, r, { 'm.relates_to': { rel_type: 'm.annotation', event_id: ev, key: '👍' } }, 'm.reaction');
    expect(await counts(carol, r)).toEqual({ notification_count: 2, highlight_count: 0 });
    expect(await counts(bob, r)).toEqual({ notification_count: 0, highlight_count: 0 });
    expect((await notifications(carol)).notifications[0].event.event_id).toBe(reaction);
    expect((await carol.c.delete(`${v3}/pushrules/global/override/reactions`)).status).toBe(200);
    expect((await bob.c.delete(`${v3}/pushrules/global/room/${enc(r)}`)).status).toBe(200);
  });

  it('events sent before a user joined do not count for them, nor while they were away', async () => {
    const dave = await user(server());
    const r = await room(alice, bob);
    await send(alice, r, { msgtype: 'm.text', body: 'before dave' });
    await send(alice, r, { msgtype: 'm.text', body: 'before dave, again' });
    expect((await dave.c.post(`${v3}/rooms/${enc(r)}/join`, {})).status).toBe(200);
    expect(await counts(dave, r)).toEqual({ notification_count: 0, highlight_count: 0 });
    await send(alice, r, { msgtype: 'm.text', body: 'after dave' });
    expect(await counts(dave, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    expect(await counts(bob, r)).toEqual({ notification_count: 3, highlight_count: 0 });
    // A profile change (a new join event) does not restart the count.
    expect((await dave.c.put(`${v3}/profile/${enc(dave.userId)}/displayname`, { displayname: 'Dave the Second' })).status).toBe(200);
    expect(await counts(dave, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    // Leave, miss a message, come back: only what came after the return counts.
    expect((await dave.c.post(`${v3}/rooms/${enc(r)}/leave`, {})).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'while dave is away' });
    expect((await dave.c.post(`${v3}/rooms/${enc(r)}/join`, {})).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'dave is back' });
    expect(await counts(dave, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    const listed = (await notifications(dave)).notifications.filter((n: any) => n.room_id === r).map((n: any) => n.event.content.body);
    expect(listed).toEqual(['dave is back']);
  });

  it('the display name set in the room highlights its owner', async () => {
    const erin = await user(server());
    expect((await erin.c.put(`${v3}/profile/${enc(erin.userId)}/displayname`, { displayname: 'Erin Quux' })).status).toBe(200);
    const r = await room(alice, erin, bob);
    await send(alice, r, { msgtype: 'm.text', body: 'is Erin Quux around?' });
    expect(await counts(erin, r)).toEqual({ notification_count: 1, highlight_count: 1 });
    expect(await counts(bob, r)).toEqual({ notification_count: 1, highlight_count: 0 });
  });

  it('a user who ignores the sender gets no count', async () => {
    const frank = await user(server());
    const r = await room(alice, frank, bob);
    const ignore = await frank.c.put(`${v3}/user/${enc(frank.userId)}/account_data/m.ignored_user_list`, { ignored_users: { [alice.userId]: {} } });
    expect(ignore.status).toBe(200);
    const ev = await send(alice, r, { msgtype: 'm.text', body: `ignored, even with ${frank.localpart}`, 'm.mentions': { user_ids: [frank.userId] } });
    await send(bob, r, { msgtype: 'm.text', body: 'not ignored' });
    expect(await counts(frank, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    expect((await notifications(frank)).notifications.some((n: any) => n.event.event_id === ev)).toBe(false);
    expect(await counts(bob, r)).toEqual({ notification_count: 1, highlight_count: 0 });
  });

  it('a rule, ignore or display-name change in a room with earlier messages counts from the next message on', async () => {
    // Push evaluation keeps each room's members split by their rules and
    // ignored users: every change must reach the room's next event.
    const gina = await user(server());
    const r = await room(alice, gina, carol);
    await send(alice, r, { msgtype: 'm.text', body: 'one' });
    expect(await counts(gina, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    // A rule of her own silences the room for Gina alone.
    expect((await gina.c.put(`${v3}/pushrules/global/room/${enc(r)}`, { actions: ['dont_notify'] })).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'two' });
    expect(await counts(gina, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    expect(await counts(carol, r)).toEqual({ notification_count: 2, highlight_count: 0 });
    // A change to a default rule (disabling .m.rule.message) takes effect too.
    expect((await gina.c.delete(`${v3}/pushrules/global/room/${enc(r)}`)).status).toBe(200);
    expect((await gina.c.put(`${v3}/pushrules/global/underride/.m.rule.message/enabled`, { enabled: false })).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'three' });
    expect(await counts(gina, r)).toEqual({ notification_count: 1, highlight_count: 0 });
    expect((await gina.c.put(`${v3}/pushrules/global/underride/.m.rule.message/enabled`, { enabled: true })).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'four' });
    expect(await counts(gina, r)).toEqual({ notification_count: 2, highlight_count: 0 });
    // Ignoring the sender, then no longer.
    const ignore = (users: Record<string, object>) => gina.c.put(`${v3}/user/${enc(gina.userId)}/account_data/m.ignored_user_list`, { ignored_users: users });
    expect((await ignore({ [alice.userId]: {} })).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'five' });
    expect(await counts(gina, r)).toEqual({ notification_count: 2, highlight_count: 0 });
    expect((await ignore({})).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'six' });
    expect(await counts(gina, r)).toEqual({ notification_count: 3, highlight_count: 0 });
    // A new display name highlights from the next message.
    expect((await gina.c.put(`${v3}/profile/${enc(gina.userId)}/displayname`, { displayname: 'Gina Zork' })).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'hello gina zork' });
    expect(await counts(gina, r)).toEqual({ notification_count: 4, highlight_count: 1 });
    expect(await counts(carol, r)).toEqual({ notification_count: 7, highlight_count: 0 });
  });

  it('threaded receipts clear their thread only; an unthreaded one clears everything before it', async () => {
    const r = await room(alice, bob, carol);
    const root = await send(alice, r, { msgtype: 'm.text', body: 'root' });
    const t1 = await send(alice, r, { msgtype: 'm.text', body: 't1', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const t2 = await send(alice, r, { msgtype: 'm.text', body: `t2 ${bob.localpart}`, 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const main2 = await send(alice, r, { msgtype: 'm.text', body: 'main 2' });
    let s = (await sync(bob, undefined, THREADS)).rooms.join[r];
    expect(s.unread_notifications).toEqual({ notification_count: 2, highlight_count: 0 });
    expect(s.unread_thread_notifications[root]).toEqual({ notification_count: 2, highlight_count: 1 });
    // Read the thread up to t1.
    expect((await receipt(bob, r, t1, { thread_id: root })).status).toBe(200);
    s = (await sync(bob, undefined, THREADS)).rooms.join[r];
    expect(s.unread_thread_notifications[root]).toEqual({ notification_count: 1, highlight_count: 1 });
    expect(s.unread_notifications).toEqual({ notification_count: 2, highlight_count: 0 });
    // The main timeline read up to the root: main2 is left.
    expect((await receipt(bob, r, root, { thread_id: 'main' })).status).toBe(200);
    s = (await sync(bob, undefined, THREADS)).rooms.join[r];
    expect(s.unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
    expect(s.unread_thread_notifications[root]).toEqual({ notification_count: 1, highlight_count: 1 });
    // Without the filter, threads are in the room count.
    expect(await counts(bob, r)).toEqual({ notification_count: 2, highlight_count: 1 });
    // Notifications: t2 is unread, t1 is read.
    const list = (await notifications(bob)).notifications.filter((n: any) => n.room_id === r);
    expect(list.find((n: any) => n.event.event_id === t2).read).toBe(false);
    expect(list.find((n: any) => n.event.event_id === t1).read).toBe(true);
    // Carol, who sent no receipt, still has everything.
    expect(await counts(carol, r)).toEqual({ notification_count: 4, highlight_count: 0 });
    // An unthreaded receipt at the newest event clears the lot.
    expect((await receipt(bob, r, main2)).status).toBe(200);
    s = (await sync(bob, undefined, THREADS)).rooms.join[r];
    expect(s.unread_notifications).toEqual({ notification_count: 0, highlight_count: 0 });
    expect(s.unread_thread_notifications?.[root]).toBeUndefined();
  });

  it('counts carried from one incremental sync to the next match a fresh count, step by step', async () => {
    const r = await room(alice, bob, carol);
    let since = (await sync(bob, undefined, THREADS)).next_batch as string;
    // Each step: what happens, then what Bob's next incremental sync says about the room.
    const step = async (main: { notification_count: number; highlight_count: number }, threads: Record<string, unknown> | undefined) => {
      const body = await sync(bob, since, THREADS);
      since = body.next_batch;
      const s = body.rooms.join[r];
      expect(s.unread_notifications).toEqual(main);
      expect(s.unread_thread_notifications).toEqual(threads);
    };
    const ev1 = await send(alice, r, { msgtype: 'm.text', body: 'one' });
    await step({ notification_count: 1, highlight_count: 0 }, undefined);
    const ev2 = await send(alice, r, { msgtype: 'm.text', body: 'for bob', 'm.mentions': { user_ids: [bob.userId] } });
    await step({ notification_count: 2, highlight_count: 1 }, undefined);
    await send(bob, r, { msgtype: 'm.text', body: 'my own' });
    await step({ notification_count: 2, highlight_count: 1 }, undefined);
    await send(carol, r, { msgtype: 'm.text', body: 'in a thread', 'm.relates_to': { rel_type: 'm.thread', event_id: ev1 } });
    await step({ notification_count: 2, highlight_count: 1 }, { [ev1]: { notification_count: 1, highlight_count: 0 } });
    await send(alice, r, { msgtype: 'm.text', body: 'for carol', 'm.mentions': { user_ids: [carol.userId] } });
    await step({ notification_count: 3, highlight_count: 1 }, { [ev1]: { notification_count: 1, highlight_count: 0 } });
    // Read up to the mention: Bob's own message does not count, the one for Carol does; the thread reply is later.
    expect((await receipt(bob, r, ev2)).status).toBe(200);
    await step({ notification_count: 1, highlight_count: 0 }, { [ev1]: { notification_count: 1, highlight_count: 0 } });
    await send(alice, r, { msgtype: 'm.text', body: 'seven' });
    await step({ notification_count: 2, highlight_count: 0 }, { [ev1]: { notification_count: 1, highlight_count: 0 } });
    // The others, counted afresh (first sync of theirs in this room since the messages).
    const c = (await sync(carol, undefined, THREADS)).rooms.join[r];
    expect(c.unread_notifications).toEqual({ notification_count: 5, highlight_count: 1 });
    expect(c.unread_thread_notifications).toBeUndefined();
    const a = (await sync(alice, undefined, THREADS)).rooms.join[r];
    expect(a.unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
    expect(a.unread_thread_notifications).toEqual({ [ev1]: { notification_count: 1, highlight_count: 0 } });
    // A long-poll woken by a new message carries the counts forward too.
    const poll = bob.c.get(`${v3}/sync?timeout=20000&since=${enc(since)}${THREADS}`);
    await new Promise((res) => setTimeout(res, 200));
    await send(carol, r, { msgtype: 'm.text', body: `hey ${bob.localpart}` });
    const woken = await poll;
    expect(woken.status).toBe(200);
    expect(woken.body.rooms.join[r].unread_notifications).toEqual({ notification_count: 3, highlight_count: 1 });
  });

  it('counts drop after a receipt, highlights included, and pagination walks defaults and exceptions alike', async () => {
    const gina = await user(server());
    const r = await room(alice, gina);
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const mention = i % 2 === 0;
      sent.push(await send(alice, r, { msgtype: 'm.text', body: `n${i}`, ...(mention ? { 'm.mentions': { user_ids: [gina.userId] } } : {}) }));
    }
    expect(await counts(gina, r)).toEqual({ notification_count: 5, highlight_count: 3 });
    // Page through two at a time: newest first, every event once.
    const seen: string[] = [];
    let from: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const page = await notifications(gina, `limit=2${from ? `&from=${enc(from)}` : ''}`);
      seen.push(...page.notifications.map((n: any) => n.event.event_id));
      if (!page.next_token) break;
      from = page.next_token;
    }
    expect(seen).toEqual([...sent].reverse());
    expect((await receipt(gina, r, sent[2]!, {}, 'm.read.private')).status).toBe(200);
    expect(await counts(gina, r)).toEqual({ notification_count: 2, highlight_count: 1 });
    expect((await receipt(gina, r, sent[4]!)).status).toBe(200);
    expect(await counts(gina, r)).toEqual({ notification_count: 0, highlight_count: 0 });
  });
});
