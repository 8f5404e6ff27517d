/** Small helpers for the sync e2e tests. */
import type { RegisteredUser, TestServer } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';

export interface U extends RegisteredUser {
  c: RawClient;
}

export async function user(server: TestServer): Promise<U> {
  const u = await server.registerUser();
  return { ...u, c: new RawClient(server.baseUrl, u.accessToken) };
}

export async function createRoom(u: U, body: Record<string, unknown> = {}): Promise<string> {
  const r = await u.c.post('/_matrix/client/v3/createRoom', body);
  if (r.status !== 200) throw new Error(`createRoom: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.room_id;
}

let txn = 0;
export async function send(u: U, roomId: string, body: string | Record<string, unknown>, type = 'm.room.message'): Promise<string> {
  const content = typeof body === 'string' ? { msgtype: 'm.text', body } : body;
  const r = await u.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/${enc(type)}/t${Date.now()}-${txn++}`, content);
  if (r.status !== 200) throw new Error(`send: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.event_id;
}

export async function join(u: U, roomId: string): Promise<void> {
  const r = await u.c.post(`/_matrix/client/v3/join/${enc(roomId)}`, {});
  if (r.status !== 200) throw new Error(`join: ${r.status} ${JSON.stringify(r.body)}`);
}

export async function invite(u: U, roomId: string, userId: string): Promise<void> {
  const r = await u.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: userId });
  if (r.status !== 200) throw new Error(`invite: ${r.status} ${JSON.stringify(r.body)}`);
}

export async function sync(u: U, params: Record<string, string | number | boolean | object> = {}): Promise<any> {
  const q = Object.entries(params)
    .map(([k, v]) => `${k}=${enc(typeof v === 'object' ? JSON.stringify(v) : String(v))}`)
    .join('&');
  const r = await u.c.get(`/_matrix/client/v3/sync${q ? '?' + q : ''}`);
  if (r.status !== 200) throw new Error(`sync: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * Long-polls from `since` until a response satisfies `until`, and returns it.
 * A long-poll may return for other streams first (the user's own presence
 * going online, say); a poll that nothing relevant wakes runs into its
 * timeout and fails the test.
 */
export async function syncUntil(u: U, since: string, until: (res: any) => boolean, maxPolls = 10): Promise<any> {
  for (let i = 0; i < maxPolls; i++) {
    const res = await sync(u, { since, timeout: 30000 });
    if (until(res)) return res;
    since = res.next_batch;
  }
  throw new Error(`sync: condition not met after ${maxPolls} long-polls`);
}

/** Bodies of m.room.message events in a joined room's timeline. */
export function bodies(res: any, roomId: string): string[] {
  return (res.rooms?.join?.[roomId]?.timeline?.events ?? []).filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body);
}
