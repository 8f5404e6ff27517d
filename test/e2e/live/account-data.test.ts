import { beforeAll, expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { room, sync, user, type U } from './helpers.js';

describeShapes('account data and tags', (server) => {
  let alice: U;
  let bob: U;
  let roomId: string;
  const v3 = '/_matrix/client/v3';

  beforeAll(async () => {
    alice = await user(server());
    bob = await user(server());
    roomId = await room(alice, bob);
  });

  it('stores and returns global account data', async () => {
    const path = `${v3}/user/${enc(alice.userId)}/account_data/org.example.test`;
    expect((await alice.c.get(path)).body.errcode).toBe('M_NOT_FOUND');
    expect((await alice.c.put(path, { a: 1 })).status).toBe(200);
    const got = await alice.c.get(path);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ a: 1 });
    expect((await alice.c.put(path, { a: 2 })).status).toBe(200);
    expect((await alice.c.get(path)).body).toEqual({ a: 2 });
  });

  it('refuses other users and server-managed types', async () => {
    const other = `${v3}/user/${enc(bob.userId)}/account_data/org.example.test`;
    const put = await alice.c.put(other, { a: 1 });
    expect(put.status).toBe(403);
    expect(put.body.errcode).toBe('M_FORBIDDEN');
    expect((await alice.c.get(other)).status).toBe(403);
    const rules = await alice.c.put(`${v3}/user/${enc(alice.userId)}/account_data/m.push_rules`, {});
    expect(rules.status).toBe(405);
    expect(rules.body.errcode).toBe('M_BAD_JSON');
    const fr = await alice.c.put(`${v3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`, { event_id: '$x' });
    expect(fr.status).toBe(405);
    expect(fr.body.errcode).toBe('M_BAD_JSON');
    const notJson = await alice.c.put(`${v3}/user/${enc(alice.userId)}/account_data/x.y`, undefined, { raw: '[1,2]', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(['M_BAD_JSON', 'M_NOT_JSON']).toContain(notJson.body.errcode);
    const badRoom = await alice.c.put(`${v3}/user/${enc(alice.userId)}/rooms/not-a-room/account_data/x.y`, {});
    expect(badRoom.status).toBe(400);
    expect(badRoom.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('stores room account data and serves it through /sync', async () => {
    const first = await sync(alice);
    const path = `${v3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/org.example.room`;
    expect((await alice.c.get(path)).status).toBe(404);
    expect((await alice.c.put(path, { colour: 'blue' })).status).toBe(200);
    expect((await alice.c.get(path)).body).toEqual({ colour: 'blue' });
    const later = await sync(alice, first.next_batch);
    const events = later.rooms?.join?.[roomId]?.account_data?.events ?? [];
    expect(events).toContainEqual({ type: 'org.example.room', content: { colour: 'blue' } });
    // The global one set earlier is in an initial sync.
    const global = (await sync(alice)).account_data?.events ?? [];
    expect(global.find((e: any) => e.type === 'org.example.test')?.content).toEqual({ a: 2 });
    // Bob sees none of it.
    const bobs = await sync(bob);
    expect((bobs.account_data?.events ?? []).some((e: any) => e.type === 'org.example.test')).toBe(false);
  });

  it('manages tags and serves them as m.tag', async () => {
    const base = `${v3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags`;
    expect((await alice.c.get(base)).body).toEqual({ tags: {} });
    const before = await sync(alice);
    expect((await alice.c.put(`${base}/m.favourite`, { order: 0.5 })).status).toBe(200);
    expect((await alice.c.put(`${base}/u.work`, {})).status).toBe(200);
    expect((await alice.c.get(base)).body).toEqual({ tags: { 'm.favourite': { order: 0.5 }, 'u.work': {} } });
    const s1 = await sync(alice, before.next_batch);
    const tagEv = (s1.rooms?.join?.[roomId]?.account_data?.events ?? []).find((e: any) => e.type === 'm.tag');
    expect(tagEv?.content).toEqual({ tags: { 'm.favourite': { order: 0.5 }, 'u.work': {} } });
    expect((await alice.c.delete(`${base}/u.work`)).status).toBe(200);
    expect((await alice.c.get(base)).body).toEqual({ tags: { 'm.favourite': { order: 0.5 } } });
    const s2 = await sync(alice, s1.next_batch);
    const tagEv2 = (s2.rooms?.join?.[roomId]?.account_data?.events ?? []).find((e: any) => e.type === 'm.tag');
    expect(tagEv2?.content).toEqual({ tags: { 'm.favourite': { order: 0.5 } } });
    // Bad order values and other users.
    for (const order of [2, -0.1, 'high']) {
      const res = await alice.c.put(`${base}/m.lowpriority`, { order });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_BAD_JSON');
    }
    expect((await bob.c.put(`${v3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags/x`, {})).status).toBe(403);
    expect((await bob.c.get(base)).status).toBe(403);
  });

  it('validates m.ignored_user_list and hides ignored senders', async () => {
    const path = `${v3}/user/${enc(bob.userId)}/account_data/m.ignored_user_list`;
    const bad = await bob.c.put(path, { ignored_users: ['@x:y'] });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_BAD_JSON');
    expect((await bob.c.put(path, { ignored_users: { [alice.userId]: {} } })).status).toBe(200);
    expect((await bob.c.get(path)).body).toEqual({ ignored_users: { [alice.userId]: {} } });
    expect((await bob.c.put(path, { ignored_users: {} })).status).toBe(200);
  });
});
