/**
 * Incremental syncs of one room at one position share one timeline read,
 * which also says which events have relations and who sent them from which
 * device: `unsigned.transaction_id` must still reach only the sending
 * device, and aggregations that arrive later must show.
 */
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';
import { createRoom, join, send, sync, syncUntil, user, type U } from './helpers.js';

async function secondDevice(server: { baseUrl: string }, u: U): Promise<U> {
  const c = new RawClient(server.baseUrl);
  const r = await c.post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.userId }, password: u.password });
  if (r.status !== 200) throw new Error(`login ${r.status} ${JSON.stringify(r.body)}`);
  return { ...u, accessToken: r.body.access_token, deviceId: r.body.device_id, c: new RawClient(server.baseUrl, r.body.access_token) };
}

describeShapes('sync: what the shared timeline read carries (transaction ids, aggregations)', (server) => {
  it('transaction_id only for the sending device, through the shared timeline read', async () => {
    const a1 = await user(server());
    const a2 = await secondDevice(server(), a1);
    const b = await user(server());
    const roomId = await createRoom(a1, { preset: 'public_chat' });
    await join(b, roomId);
    const [s1, s2, sb] = await Promise.all([sync(a1), sync(a2), sync(b)]);
    const polls = [a1, a2, b].map((u, i) => syncUntil(u, [s1, s2, sb][i].next_batch, (r) => !!r.rooms?.join?.[roomId]?.timeline?.events?.length));
    await new Promise((r) => setTimeout(r, 300));
    const id = await send(a1, roomId, 'hello');
    const [r1, r2, rb] = await Promise.all(polls);
    const ev = (r: any) => r.rooms.join[roomId].timeline.events.find((e: any) => e.event_id === id);
    expect(ev(r1).unsigned.transaction_id).toBeDefined();
    expect(ev(r2).unsigned?.transaction_id).toBeUndefined();
    expect(ev(rb).unsigned?.transaction_id).toBeUndefined();
    // Initial syncs too.
    const [i1, i2, ib] = await Promise.all([sync(a1), sync(a2), sync(b)]);
    expect(ev(i1).unsigned.transaction_id).toBeDefined();
    expect(ev(i2).unsigned?.transaction_id).toBeUndefined();
    expect(ev(ib).unsigned?.transaction_id).toBeUndefined();
    // Incremental syncs at the same position (shared read), other device first.
    const [j2, jb, j1] = await Promise.all([sync(a2, { since: s2.next_batch }), sync(b, { since: sb.next_batch }), sync(a1, { since: s1.next_batch })]);
    expect(ev(j1).unsigned.transaction_id).toBeDefined();
    expect(ev(j2).unsigned?.transaction_id).toBeUndefined();
    expect(ev(jb).unsigned?.transaction_id).toBeUndefined();
  });

  it('bundles an edit that arrives after the event was served at the same since', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const s = await sync(b);
    const id = await send(a, roomId, 'orig');
    const first = await sync(b, { since: s.next_batch });
    expect(first.rooms.join[roomId].timeline.events.some((e: any) => e.event_id === id)).toBe(true);
    await send(a, roomId, { msgtype: 'm.text', body: '* new', 'm.new_content': { msgtype: 'm.text', body: 'new' }, 'm.relates_to': { rel_type: 'm.replace', event_id: id } });
    await send(a, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: id, key: 'x' } }, 'm.reaction');
    // Same since again: the timeline now holds the event and its edit; the event carries its aggregations.
    const again = await sync(b, { since: s.next_batch });
    const e = again.rooms.join[roomId].timeline.events.find((x: any) => x.event_id === id);
    expect(e.unsigned['m.relations']).toBeDefined();
    const init = await sync(b);
    const e2 = init.rooms.join[roomId].timeline.events.find((x: any) => x.event_id === id);
    expect(e2.unsigned['m.relations']).toBeDefined();
  });

  it('a redacted event carries no aggregations; the others still do', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    const s = await sync(a);
    const x = await send(a, roomId, 'x');
    const y = await send(a, roomId, 'y');
    await send(a, roomId, { msgtype: 'm.text', body: '* y2', 'm.new_content': { msgtype: 'm.text', body: 'y2' }, 'm.relates_to': { rel_type: 'm.replace', event_id: y } });
    await send(a, roomId, { msgtype: 'm.text', body: '* x2', 'm.new_content': { msgtype: 'm.text', body: 'x2' }, 'm.relates_to': { rel_type: 'm.replace', event_id: x } });
    const r = await a.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(x)}/rd1`, {});
    expect(r.status).toBe(200);
    const inc = await sync(a, { since: s.next_batch });
    const evs = inc.rooms.join[roomId].timeline.events;
    expect(evs.find((e: any) => e.event_id === x).unsigned['m.relations']).toBeUndefined();
    expect(evs.find((e: any) => e.event_id === y).unsigned['m.relations']).toBeDefined();
  });
});
