/** Small helpers for the live-streams end-to-end tests. */
import type { RegisteredUser, TestServer } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';

let txn = 0;

export interface U extends RegisteredUser {
  c: RawClient;
}

export async function user(server: TestServer, localpart?: string): Promise<U> {
  const u = await server.registerUser(localpart);
  return { ...u, c: new RawClient(server.baseUrl, u.accessToken) };
}

/** A public room created by `owner` and joined by the others. */
export async function room(owner: U, ...others: U[]): Promise<string> {
  const res = await owner.c.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' });
  if (res.status !== 200) throw new Error(`createRoom: ${res.status} ${JSON.stringify(res.body)}`);
  const roomId = res.body.room_id as string;
  for (const o of others) {
    const j = await o.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/join`, {});
    if (j.status !== 200) throw new Error(`join: ${j.status} ${JSON.stringify(j.body)}`);
  }
  return roomId;
}

export async function send(u: U, roomId: string, content: Record<string, any>, type = 'm.room.message'): Promise<string> {
  const res = await u.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/t${Date.now()}-${txn++}`, content);
  if (res.status !== 200) throw new Error(`send: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.event_id as string;
}

export async function sync(u: U, since?: string, extra = ''): Promise<any> {
  const q = `timeout=0${since ? `&since=${enc(since)}` : ''}${extra}`;
  const res = await u.c.get(`/_matrix/client/v3/sync?${q}`);
  if (res.status !== 200) throw new Error(`sync: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
