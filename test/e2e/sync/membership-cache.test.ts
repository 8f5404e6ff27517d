/**
 * The caches of the /sync path (membership-cache.ts, key-count-cache.ts,
 * recent-events.ts) must never hide a change: a membership change made while
 * the user long-polls (joins, kicks, bans, invites) and key counts changed by
 * uploads and claims show up in the next response. In the workers shape the
 * change goes through another generic worker than the one serving /sync, so
 * the serving process learns of it only by replication.
 */
import { expect, it } from 'vitest';
import { describeShapes, type TestServer } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';
import type { WorkerDeployment } from '../../helpers/worker-deployment.js';
import { bodies, createRoom, invite, join, send, type U } from './helpers.js';

/**
 * A user with three clients: `sync` for /sync, `act` for the changes (two
 * different generic workers in the workers shape) and `home` through the
 * front (nginx: endpoints the generic workers do not serve, as keys/upload).
 */
interface Two extends U {
  sync: RawClient;
  act: RawClient;
  home: RawClient;
}

async function twoClients(server: TestServer): Promise<Two> {
  const u = await server.registerUser();
  const d = server.shape === 'workers' ? (server as WorkerDeployment) : undefined;
  const sync = new RawClient(d ? d.instanceUrl('generic_worker1') : server.baseUrl, u.accessToken);
  const act = new RawClient(d ? d.instanceUrl('generic_worker2') : server.baseUrl, u.accessToken);
  return { ...u, c: act, sync, act, home: new RawClient(server.baseUrl, u.accessToken) };
}

async function syncOn(u: Two, params: Record<string, string | number> = {}): Promise<any> {
  const q = Object.entries(params)
    .map(([k, v]) => `${k}=${enc(String(v))}`)
    .join('&');
  const r = await u.sync.get(`/_matrix/client/v3/sync${q ? '?' + q : ''}`);
  if (r.status !== 200) throw new Error(`sync: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Long-polls (on the sync client) until `until` holds; returns that response. */
async function pollUntil(u: Two, since: string, until: (res: any) => boolean, maxPolls = 10): Promise<any> {
  for (let i = 0; i < maxPolls; i++) {
    const res = await syncOn(u, { since, timeout: 30000 });
    if (until(res)) return res;
    since = res.next_batch;
  }
  throw new Error(`sync: condition not met after ${maxPolls} long-polls`);
}

/** Starts a long-poll loop, lets it register, runs `act`, and returns the response that satisfied `until`. */
async function whilePolling(u: Two, since: string, until: (res: any) => boolean, act: () => Promise<void>): Promise<any> {
  const poll = pollUntil(u, since, until);
  await new Promise((r) => setTimeout(r, 150));
  await act();
  return poll;
}

const membershipOf = (res: any, roomId: string, userId: string): string | undefined => {
  const room = res.rooms?.join?.[roomId] ?? res.rooms?.leave?.[roomId];
  const events = [...(room?.state?.events ?? []), ...(room?.timeline?.events ?? [])];
  const mine = events.filter((e: any) => e.type === 'm.room.member' && e.state_key === userId);
  return mine.length ? mine[mine.length - 1].content.membership : undefined;
};

describeShapes('sync: caches never hide a membership change', (server) => {
  it('a join made while long-polling shows the room in join, with its state', async () => {
    const a = await twoClients(server());
    const b = await twoClients(server());
    // b syncs first, so that its memberships are cached before the join.
    const other = await createRoom(b);
    const t0 = (await syncOn(b)).next_batch;
    const roomId = await createRoom(a, { preset: 'public_chat', name: 'joined while polling' });
    const res = await whilePolling(b, t0, (r) => r.rooms?.join?.[roomId] !== undefined, () => join(b, roomId));
    const room = res.rooms.join[roomId];
    const all = [...room.state.events, ...room.timeline.events];
    expect(all.some((e: any) => e.type === 'm.room.create')).toBe(true);
    expect(all.some((e: any) => e.type === 'm.room.name' && e.content.name === 'joined while polling')).toBe(true);
    expect(membershipOf(res, roomId, b.userId)).toBe('join');
    // Messages in the new room now wake b's long-polls.
    const got = await whilePolling(b, res.next_batch, (r) => bodies(r, roomId).includes('welcome'), async () => {
      await send(a, roomId, 'welcome');
    });
    expect(bodies(got, roomId)).toEqual(['welcome']);
    expect(got.rooms.join[other]).toBeUndefined();
  });

  for (const action of ['kick', 'ban'] as const) {
    it(`a ${action} while long-polling moves the room to leave, and its messages stop`, async () => {
      const a = await twoClients(server());
      const b = await twoClients(server());
      const roomId = await createRoom(a, { preset: 'public_chat' });
      await join(b, roomId);
      await send(a, roomId, 'before');
      const t0 = (await syncOn(b)).next_batch;
      const res = await whilePolling(b, t0, (r) => r.rooms?.leave?.[roomId] !== undefined, async () => {
        const r = await a.act.post(`/_matrix/client/v3/rooms/${enc(roomId)}/${action}`, { user_id: b.userId, reason: 'test' });
        expect(r.status).toBe(200);
      });
      expect(res.rooms.join?.[roomId]).toBeUndefined();
      expect(membershipOf(res, roomId, b.userId)).toBe(action === 'kick' ? 'leave' : 'ban');
      // Later messages do not reach b: nothing for the room in the next responses.
      await send(a, roomId, 'after');
      const later = await syncOn(b, { since: res.next_batch, timeout: 500 });
      expect(later.rooms?.join?.[roomId]).toBeUndefined();
      expect(later.rooms?.leave?.[roomId]).toBeUndefined();
      // A fresh initial sync agrees.
      const initial = await syncOn(b);
      expect(initial.rooms?.join?.[roomId]).toBeUndefined();
    });
  }

  it('an invite made while long-polling shows in invite; accepting it moves the room to join', async () => {
    const a = await twoClients(server());
    const b = await twoClients(server());
    const roomId = await createRoom(a);
    const t0 = (await syncOn(b)).next_batch;
    const res = await whilePolling(b, t0, (r) => r.rooms?.invite?.[roomId] !== undefined, () => invite(a, roomId, b.userId));
    const self = res.rooms.invite[roomId].invite_state.events.find((e: any) => e.type === 'm.room.member' && e.state_key === b.userId);
    expect(self?.content.membership).toBe('invite');
    const joined = await whilePolling(b, res.next_batch, (r) => r.rooms?.join?.[roomId] !== undefined, () => join(b, roomId));
    expect(membershipOf(joined, roomId, b.userId)).toBe('join');
  });

  it('leaving and joining again in quick succession ends joined', async () => {
    const a = await twoClients(server());
    const b = await twoClients(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const t0 = (await syncOn(b)).next_batch;
    const res = await whilePolling(
      b,
      t0,
      (r) => membershipOf(r, roomId, b.userId) === 'join' && r.rooms?.join?.[roomId] !== undefined,
      async () => {
        expect((await b.act.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {})).status).toBe(200);
        await join(b, roomId);
      },
    );
    expect(res.rooms.leave?.[roomId]).toBeUndefined();
    const got = await whilePolling(b, res.next_batch, (r) => bodies(r, roomId).includes('back'), () => send(a, roomId, 'back').then(() => undefined));
    expect(bodies(got, roomId)).toEqual(['back']);
  });

  it('one-time key counts follow uploads and claims made elsewhere', async () => {
    const a = await twoClients(server());
    const b = await twoClients(server());
    const key = (i: number) => ({ [`signed_curve25519:K${i}`]: { key: `key${i}`, signatures: {} } });
    expect((await a.home.post('/_matrix/client/v3/keys/upload', { one_time_keys: { ...key(1), ...key(2) } })).status).toBe(200);
    // In the workers shape the upload ran in another process: its invalidation travels by Redis.
    await expect.poll(async () => (await syncOn(a, { timeout: 0 })).device_one_time_keys_count.signed_curve25519, { timeout: 5000 }).toBe(2);
    const first = await syncOn(a);
    expect(first.device_one_time_keys_count.signed_curve25519).toBe(2);
    expect(first.device_unused_fallback_key_types).toEqual([]);
    // Claimed by another user (through another worker): the count drops.
    const claim = await b.act.post('/_matrix/client/v3/keys/claim', { one_time_keys: { [a.userId]: { [a.deviceId]: 'signed_curve25519' } } });
    expect(claim.status).toBe(200);
    expect(Object.keys(claim.body.one_time_keys[a.userId][a.deviceId])).toHaveLength(1);
    const counts = async () => (await syncOn(a, { since: first.next_batch, timeout: 0 })).device_one_time_keys_count.signed_curve25519;
    await expect.poll(counts, { timeout: 5000 }).toBe(1);
    // A fallback key uploaded, then used by a claim once the one-time keys run out.
    const fb = { 'signed_curve25519:F1': { key: 'fb', fallback: true, signatures: {} } };
    expect((await a.home.post('/_matrix/client/v3/keys/upload', { fallback_keys: fb })).status).toBe(200);
    const types = async () => (await syncOn(a, { since: first.next_batch, timeout: 0 })).device_unused_fallback_key_types;
    await expect.poll(types, { timeout: 5000 }).toEqual(['signed_curve25519']);
    for (let i = 0; i < 2; i++) {
      await b.act.post('/_matrix/client/v3/keys/claim', { one_time_keys: { [a.userId]: { [a.deviceId]: 'signed_curve25519' } } });
    }
    await expect.poll(counts, { timeout: 5000 }).toBe(0);
    await expect.poll(types, { timeout: 5000 }).toEqual([]);
  });
});
