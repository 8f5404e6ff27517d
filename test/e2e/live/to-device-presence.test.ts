import { beforeAll, expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';
import { room, sync, user, type U } from './helpers.js';

const v3 = '/_matrix/client/v3';

async function login(server: { baseUrl: string }, u: U): Promise<{ c: RawClient; deviceId: string }> {
  const res = await new RawClient(server.baseUrl).post(`${v3}/login`, {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: u.localpart },
    password: u.password,
  });
  if (res.status !== 200) throw new Error(`login: ${JSON.stringify(res.body)}`);
  return { c: new RawClient(server.baseUrl, res.body.access_token), deviceId: res.body.device_id };
}

describeShapes('to-device messages', (server) => {
  let alice: U;
  let bob: U;
  beforeAll(async () => {
    alice = await user(server());
    bob = await user(server());
  });

  it('delivers to a device that never synced, exactly once, then deletes after acknowledgement', async () => {
    const txn = `t${Date.now()}`;
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { hello: 'bob' } } } };
    expect((await alice.c.put(`${v3}/sendToDevice/org.example.ping/${txn}`, body)).status).toBe(200);
    // Same transaction again: not delivered twice.
    expect((await alice.c.put(`${v3}/sendToDevice/org.example.ping/${txn}`, body)).status).toBe(200);
    const s1 = await sync(bob);
    const msgs = (s1.to_device?.events ?? []).filter((e: any) => e.type === 'org.example.ping');
    expect(msgs).toEqual([{ type: 'org.example.ping', sender: alice.userId, content: { hello: 'bob' } }]);
    // Not acknowledged yet: an initial sync gets it again.
    expect((await sync(bob)).to_device?.events?.length).toBe(1);
    // Acknowledged by using next_batch: gone.
    const s2 = await sync(bob, s1.next_batch);
    expect(s2.to_device?.events ?? []).toEqual([]);
    expect((await sync(bob, s2.next_batch)).to_device?.events ?? []).toEqual([]);
    // The sender's device got nothing.
    expect(((await sync(alice)).to_device?.events ?? []).length).toBe(0);
  });

  it('scopes a txn id by its path: the same txn id with another event type is another request', async () => {
    const before = await sync(bob);
    const txn = `scoped${Date.now()}`;
    const put = (type: string, n: number) => alice.c.put(`${v3}/sendToDevice/${type}/${txn}`, { messages: { [bob.userId]: { [bob.deviceId]: { n } } } });
    expect((await put('org.example.one', 1)).status).toBe(200);
    expect((await put('org.example.two', 2)).status).toBe(200);
    // Retries of both paths deliver nothing more.
    expect((await put('org.example.one', 1)).status).toBe(200);
    expect((await put('org.example.two', 2)).status).toBe(200);
    const s = await sync(bob, before.next_batch);
    expect(s.to_device?.events).toEqual([
      { type: 'org.example.one', sender: alice.userId, content: { n: 1 } },
      { type: 'org.example.two', sender: alice.userId, content: { n: 2 } },
    ]);
    await sync(bob, s.next_batch); // acknowledged
    // Bounded parts (one index entry with the user and device ids): a clear 400.
    const long = await alice.c.put(`${v3}/sendToDevice/${'t'.repeat(256)}/${txn}`, { messages: {} });
    expect([long.status, long.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const longTxn = await alice.c.put(`${v3}/sendToDevice/org.example.one/${'x'.repeat(1025)}`, { messages: {} });
    expect([longTxn.status, longTxn.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it("sends to all of a user's devices with *", async () => {
    const second = await login(server(), bob);
    const first = await sync(bob);
    const body = { messages: { [bob.userId]: { '*': { all: true } } } };
    expect((await alice.c.put(`${v3}/sendToDevice/org.example.all/${Date.now()}`, body)).status).toBe(200);
    const s1 = await sync(bob, first.next_batch);
    expect(s1.to_device.events).toEqual([{ type: 'org.example.all', sender: alice.userId, content: { all: true } }]);
    const s2 = (await second.c.get(`${v3}/sync?timeout=0`)).body;
    expect(s2.to_device.events).toEqual([{ type: 'org.example.all', sender: alice.userId, content: { all: true } }]);
    // Remote users are ignored without error.
    const remote = { messages: { '@x:elsewhere.example': { D: { a: 1 } } } };
    expect((await alice.c.put(`${v3}/sendToDevice/org.example.r/${Date.now()}`, remote)).status).toBe(200);
  });

  it('wakes a waiting long-poll', async () => {
    const s0 = await sync(bob);
    const waiting = bob.c.get(`${v3}/sync?timeout=10000&since=${enc(s0.next_batch)}`);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await alice.c.put(`${v3}/sendToDevice/org.example.live/${Date.now()}`, { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } });
    const res = await waiting;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(res.body.to_device.events).toEqual([{ type: 'org.example.live', sender: alice.userId, content: { n: 1 } }]);
  });

  it('keeps messages and positions across a restart', async () => {
    const s0 = await sync(bob);
    await alice.c.put(`${v3}/sendToDevice/org.example.before/${Date.now()}`, { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } });
    const s1 = await sync(bob, s0.next_batch);
    expect(s1.to_device.events.map((e: any) => e.type)).toEqual(['org.example.before']);
    const s2 = await sync(bob, s1.next_batch); // acknowledges (deletes) it
    await alice.c.put(`${v3}/sendToDevice/org.example.offline/${Date.now()}`, { messages: { [bob.userId]: { [bob.deviceId]: { n: 2 } } } });
    await server().restart();
    // Sent while Bob was away, stored across the restart.
    const s3 = await sync(bob, s2.next_batch);
    expect(s3.to_device.events.map((e: any) => e.type)).toEqual(['org.example.offline']);
    const s4 = await sync(bob, s3.next_batch);
    await server().restart();
    // After the restart new positions stay above what Bob has acknowledged.
    await alice.c.put(`${v3}/sendToDevice/org.example.after/${Date.now()}`, { messages: { [bob.userId]: { [bob.deviceId]: { n: 3 } } } });
    const s5 = await sync(bob, s4.next_batch);
    expect(s5.to_device.events.map((e: any) => e.type)).toEqual(['org.example.after']);
  });

  it('rejects bad bodies', async () => {
    const put = (body: unknown) => alice.c.put(`${v3}/sendToDevice/org.example.x/${Math.random()}`, body);
    expect((await put({})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await put({ messages: [] })).body.errcode).toBe('M_BAD_JSON');
    expect((await put({ messages: { [bob.userId]: 'x' } })).body.errcode).toBe('M_BAD_JSON');
    expect((await put({ messages: { [bob.userId]: { D: 5 } } })).body.errcode).toBe('M_BAD_JSON');
    expect((await put({ messages: { notauser: {} } })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await alice.c.put(`${v3}/sendToDevice/org.example.x/1`, {}, { token: null })).status).toBe(401);
  });
});

describeShapes('presence', (server) => {
  let alice: U;
  let bob: U;
  let stranger: U;
  beforeAll(async () => {
    alice = await user(server());
    bob = await user(server());
    stranger = await user(server());
    await room(alice, bob);
  });

  it('sets and reads presence, shared only with room-mates', async () => {
    const b0 = await sync(bob);
    const put = await alice.c.put(`${v3}/presence/${enc(alice.userId)}/status`, { presence: 'unavailable', status_msg: 'lunch' });
    expect(put.status).toBe(200);
    const got = await bob.c.get(`${v3}/presence/${enc(alice.userId)}/status`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ presence: 'unavailable', status_msg: 'lunch', currently_active: false });
    expect(got.body.last_active_ago).toEqual(expect.any(Number));
    const self = await alice.c.get(`${v3}/presence/${enc(alice.userId)}/status`);
    expect(self.body.presence).toBe('unavailable');
    const denied = await stranger.c.get(`${v3}/presence/${enc(alice.userId)}/status`);
    expect(denied.status).toBe(403);
    expect(denied.body.errcode).toBe('M_FORBIDDEN');
    // Through /sync: Bob sees it, the stranger does not.
    const b1 = await sync(bob, b0.next_batch, '&set_presence=offline');
    const ev = (b1.presence?.events ?? []).find((e: any) => e.sender === alice.userId);
    expect(ev?.content).toMatchObject({ presence: 'unavailable', status_msg: 'lunch' });
    const st = await sync(stranger, undefined, '&set_presence=offline');
    expect((st.presence?.events ?? []).some((e: any) => e.sender === alice.userId)).toBe(false);
  });

  it('syncing marks an offline user online', async () => {
    const carol = await user(server());
    await room(carol, bob);
    const b0 = await sync(bob, undefined, '&set_presence=offline');
    await sync(carol); // default set_presence: online
    const b1 = await sync(bob, b0.next_batch, '&set_presence=offline');
    const ev = (b1.presence?.events ?? []).find((e: any) => e.sender === carol.userId);
    expect(ev?.content).toMatchObject({ presence: 'online', currently_active: true });
    expect((await bob.c.get(`${v3}/presence/${enc(carol.userId)}/status`)).body.presence).toBe('online');
  });

  it('rejects bad input', async () => {
    const path = `${v3}/presence/${enc(alice.userId)}/status`;
    expect((await alice.c.put(path, { presence: 'dancing' })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await alice.c.put(path, {})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await alice.c.put(path, { presence: 'online', status_msg: 5 })).body.errcode).toBe('M_BAD_JSON');
    const other = await bob.c.put(path, { presence: 'online' });
    expect(other.status).toBe(403);
    expect(other.body.errcode).toBe('M_FORBIDDEN');
  });
});

describeShapes(
  'presence timeouts and disabling',
  (server) => {
    it('goes offline when the user stops syncing', async () => {
      const a = await user(server());
      const b = await user(server());
      await room(a, b);
      await a.c.put(`${v3}/presence/${enc(a.userId)}/status`, { presence: 'online' });
      expect((await b.c.get(`${v3}/presence/${enc(a.userId)}/status`)).body.presence).toBe('online');
      await new Promise((r) => setTimeout(r, 1500));
      expect((await b.c.get(`${v3}/presence/${enc(a.userId)}/status`)).body.presence).toBe('offline');
    });
  },
  { config: { presence: { enabled: true, offline_timeout_ms: 600, timeout_check_interval_ms: 200 } } },
);

describeShapes(
  'presence disabled',
  (server) => {
    it('ignores presence updates', async () => {
      const a = await user(server());
      const b = await user(server());
      await room(a, b);
      expect((await a.c.put(`${v3}/presence/${enc(a.userId)}/status`, { presence: 'online' })).status).toBe(200);
      expect((await b.c.get(`${v3}/presence/${enc(a.userId)}/status`)).body.presence).toBe('offline');
      expect((await sync(b)).presence?.events ?? []).toEqual([]);
    });
  },
  { config: { presence: { enabled: false } } },
);
