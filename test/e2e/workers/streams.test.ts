/**
 * Streams flowing between processes in a real worker deployment (PostgreSQL
 * + Redis): main, two generic workers, two event persisters, a stream writer
 * (typing, to-device, account data, receipts, presence) and a background
 * worker, each a real process. Faults: Redis pub/sub connections killed,
 * an event persister killed with SIGKILL, a worker started late.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type TestServer } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';
import { roomShardFor } from '../../../src/workers/role.js';
import { ReplicationClient } from '../../../src/workers/replication-client.js';
import { makeCluster, type Cluster } from './cluster.js';

const SECRET = 'streams-secret';
const PERSISTERS = ['event_persister1', 'event_persister2'];

interface Ports {
  g1: number;
  g2: number;
  g3: number;
  ep1: number;
  ep1r: number;
  ep2: number;
  ep2r: number;
  sw: number;
  swr: number;
  bg: number;
  metrics: number;
}

const listener = (port: number, names: string[]) => ({ type: 'http', port, bind_addresses: ['127.0.0.1'], resources: [{ names }] });

describe('worker deployment: streams between processes (postgres + redis)', () => {
  let c: Cluster;
  let p: Ports;
  const w: Record<string, TestServer> = {};
  let alice: { userId: string; accessToken: string };
  let bob: { userId: string; accessToken: string };
  const at = (port: number, token?: string) => new RawClient(`http://127.0.0.1:${port}`, token);

  beforeAll(async () => {
    p = {} as Ports;
    for (const k of ['g1', 'g2', 'g3', 'ep1', 'ep1r', 'ep2', 'ep2r', 'sw', 'swr', 'bg', 'metrics'] as const) p[k] = await freePort();
    c = await makeCluster('postgres', ({ replPort }) => ({
      redis: { enabled: true, host: '127.0.0.1', port: 6379 },
      worker_replication_secret: SECRET,
      instance_map: {
        main: { host: '127.0.0.1', port: replPort },
        event_persister1: { host: '127.0.0.1', port: p.ep1r },
        event_persister2: { host: '127.0.0.1', port: p.ep2r },
        stream_writer: { host: '127.0.0.1', port: p.swr },
      },
      stream_writers: {
        events: PERSISTERS,
        typing: 'stream_writer',
        to_device: 'stream_writer',
        account_data: 'stream_writer',
        receipts: 'stream_writer',
        presence: 'stream_writer',
      },
      run_background_tasks_on: 'background_worker',
    }));
    const generic = 'synapse.app.generic_worker';
    w.g1 = c.addWorker('generic1', { worker_app: generic, worker_listeners: [listener(p.g1, ['client', 'federation']), { type: 'metrics', port: p.metrics, bind_addresses: ['127.0.0.1'] }] }, p.g1);
    w.g2 = c.addWorker('generic2', { worker_app: generic, worker_listeners: [listener(p.g2, ['client', 'federation'])] }, p.g2);
    w.ep1 = c.addWorker('event_persister1', { worker_app: generic, worker_listeners: [listener(p.ep1r, ['replication']), listener(p.ep1, ['client'])] }, p.ep1);
    w.ep2 = c.addWorker('event_persister2', { worker_app: generic, worker_listeners: [listener(p.ep2r, ['replication']), listener(p.ep2, ['client'])] }, p.ep2);
    w.sw = c.addWorker('stream_writer', { worker_app: generic, worker_listeners: [listener(p.swr, ['replication']), listener(p.sw, ['client'])] }, p.sw);
    w.bg = c.addWorker('background_worker', { worker_app: generic, worker_listeners: [listener(p.bg, ['client'])] }, p.bg);
    await c.main.start();
    await Promise.all(['ep1', 'ep2', 'sw', 'g1', 'g2', 'bg'].map((k) => w[k]!.start()));
    alice = await c.main.registerUser();
    bob = await c.main.registerUser();
  }, 180_000);

  afterAll(async () => {
    for (const s of Object.values(w)) await s.stopProcess().catch(() => {});
    await c?.main.stop();
  }, 60_000);

  /** Creates rooms (alice, bob joined) until one lands on each persister. */
  async function roomOn(persister: string): Promise<string> {
    for (let i = 0; i < 40; i++) {
      const r = await at(p.g1, alice.accessToken).request('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const roomId = r.body.room_id as string;
      const j = await at(p.g2, bob.accessToken).request('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {});
      expect(j.status, JSON.stringify(j.body)).toBe(200);
      if (roomShardFor(roomId, PERSISTERS) === persister) return roomId;
    }
    throw new Error(`no room landed on ${persister}`);
  }

  async function send(port: number, token: string, roomId: string, body: string): Promise<string> {
    const r = await at(port, token).request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${randomBytes(6).toString('hex')}`, { msgtype: 'm.text', body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.event_id;
  }

  async function syncOn(port: number, token: string, since?: string, timeout = 0) {
    const q = new URLSearchParams({ timeout: String(timeout) });
    if (since) q.set('since', since);
    const r = await at(port, token).get(`/_matrix/client/v3/sync?${q}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  }

  const timelineIds = (body: any, roomId: string): string[] => (body.rooms?.join?.[roomId]?.timeline?.events ?? []).map((e: any) => e.event_id);

  /** Syncs from `since` until `want` event ids have all arrived (or time runs out). */
  async function syncUntil(port: number, token: string, since: string, roomId: string, want: string[], ms = 20_000): Promise<{ got: Set<string>; next: string }> {
    const got = new Set<string>();
    let next = since;
    const end = Date.now() + ms;
    while (Date.now() < end && !want.every((id) => got.has(id))) {
      const b = await syncOn(port, token, next, 2000);
      for (const id of timelineIds(b, roomId)) got.add(id);
      next = b.next_batch;
    }
    return { got, next };
  }

  let roomA: string;
  let roomB: string;

  it('a message sent through one worker wakes a /sync long-poll on another', async () => {
    roomA = await roomOn('event_persister1');
    const first = await syncOn(p.g2, bob.accessToken);
    const started = Date.now();
    const poll = syncOn(p.g2, bob.accessToken, first.next_batch, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    const id = await send(p.g1, alice.accessToken, roomA, 'hello across processes');
    const body = await poll;
    // The long-poll may have woken for something earlier (e.g. presence); follow until the message.
    const { got } = timelineIds(body, roomA).includes(id) ? { got: new Set([id]) } : await syncUntil(p.g2, bob.accessToken, body.next_batch, roomA, [id]);
    expect(got.has(id)).toBe(true);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('rooms on both event persisters progress, and syncs see both', async () => {
    roomB = await roomOn('event_persister2');
    const s = await syncOn(p.g1, alice.accessToken);
    const a = await send(p.g2, bob.accessToken, roomA, 'on persister 1');
    const b = await send(p.g2, bob.accessToken, roomB, 'on persister 2');
    const ra = await syncUntil(p.g1, alice.accessToken, s.next_batch, roomA, [a]);
    const rb = await syncUntil(p.g1, alice.accessToken, s.next_batch, roomB, [b]);
    expect(ra.got.has(a)).toBe(true);
    expect(rb.got.has(b)).toBe(true);
  });

  it('a sync token from one worker gives the same result on another', async () => {
    const s = await syncOn(p.g1, alice.accessToken);
    const ids = [await send(p.g1, alice.accessToken, roomA, 'x1'), await send(p.g1, alice.accessToken, roomB, 'x2')];
    // Wait until g1 has both, then ask g2 with the same since token.
    await syncUntil(p.g1, alice.accessToken, s.next_batch, roomA, [ids[0]!]);
    await syncUntil(p.g1, alice.accessToken, s.next_batch, roomB, [ids[1]!]);
    const on1 = await syncOn(p.g1, alice.accessToken, s.next_batch, 0);
    const on2 = await syncOn(p.g2, alice.accessToken, s.next_batch, 0);
    expect(timelineIds(on2, roomA)).toEqual(timelineIds(on1, roomA));
    expect(timelineIds(on2, roomB)).toEqual(timelineIds(on1, roomB));
    expect(timelineIds(on1, roomA)).toContain(ids[0]);
    // And g1's next token is valid on g2 (no "ahead of the server" error).
    const after = await syncOn(p.g2, alice.accessToken, on1.next_batch, 0);
    expect(after.next_batch).toBeTruthy();
  });

  it('typing set through its writer shows in /sync on a generic worker', async () => {
    const s = await syncOn(p.g2, bob.accessToken);
    const t = await at(p.sw, alice.accessToken).request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomA)}/typing/${encodeURIComponent(alice.userId)}`, { typing: true, timeout: 20_000 });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    let seen: string[] | undefined;
    let next = s.next_batch;
    const end = Date.now() + 15_000;
    while (!seen && Date.now() < end) {
      const b = await syncOn(p.g2, bob.accessToken, next, 3000);
      next = b.next_batch;
      const ev = (b.rooms?.join?.[roomA]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.typing');
      if (ev?.content.user_ids.includes(alice.userId)) seen = ev.content.user_ids;
    }
    expect(seen).toEqual([alice.userId]);
    // A worker that never saw the row (started later) gets it from the writer: see "started late".
  });

  it('presence from /sync on a generic worker reaches the presence writer', async () => {
    await syncOn(p.g2, bob.accessToken);
    const r = await at(p.g1, alice.accessToken).get(`/_matrix/client/v3/presence/${encodeURIComponent(bob.userId)}/status`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.presence).toBe('online');
  });

  it('account data written through the stream writer reaches a sync on another worker', async () => {
    const s = await syncOn(p.g2, alice.accessToken);
    const put = await at(p.g1, alice.accessToken).request('PUT', `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/account_data/org.example.test`, { v: 1 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    let found = false;
    let next = s.next_batch;
    const end = Date.now() + 15_000;
    while (!found && Date.now() < end) {
      const b = await syncOn(p.g2, alice.accessToken, next, 3000);
      next = b.next_batch;
      found = (b.account_data?.events ?? []).some((e: any) => e.type === 'org.example.test' && e.content.v === 1);
    }
    expect(found).toBe(true);
  });

  it('logout on one process is refused at once on another (caches stream)', async () => {
    const login = await at(p.g1).request('POST', '/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: (alice as any).password });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    const tok = login.body.access_token as string;
    expect((await at(p.g2, tok).get('/_matrix/client/v3/account/whoami')).status).toBe(200); // cached on g2 now
    expect((await at(c.main.port, tok).request('POST', '/_matrix/client/v3/logout', {})).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const after = await at(p.g2, tok).get('/_matrix/client/v3/account/whoami');
    expect(after.status).toBe(401);
  });

  it('events rows: the persisters follow each other; another process follows them only once a long-poll waits there, and then wakes at once', async () => {
    roomA ??= await roomOn('event_persister1');
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    await redis.connect();
    /** How many channels the instance's Redis subscription listens to (CLIENT LIST's `sub`). */
    const channels = async (instance: string): Promise<number> => {
      const list = (await redis.client('LIST')) as string;
      const line = list.split('\n').find((l) => l.includes(`name=myelin:${c.serverName}:${instance}:sub `));
      expect(line, instance).toBeDefined();
      return Number(/ sub=(\d+)/.exec(line!)![1]);
    };
    try {
      // The server's channel and its own, plus the other persister's events channel (never its own).
      expect(await channels('event_persister1')).toBe(3);
      expect(await channels('event_persister2')).toBe(3);
      // The background worker serves no long-poll in this deployment: it does not follow the events rows.
      expect(await channels('background_worker')).toBe(2);
      // An initial sync (no wait) reads the positions instead of following.
      const first = await syncOn(p.bg, bob.accessToken);
      expect(await channels('background_worker')).toBe(2);
      // Three times (the first on the join): each long-poll is woken by the row,
      // not by the periodic catch-up (every 10 s), which three in a row could not all be.
      let since = first.next_batch as string;
      for (let round = 0; round < 3; round++) {
        const poll = syncOn(p.bg, bob.accessToken, since, 20_000);
        for (let i = 0; i < 50 && (await channels('background_worker')) === 2; i++) await new Promise((r) => setTimeout(r, 100));
        expect(await channels('background_worker')).toBe(4);
        await new Promise((r) => setTimeout(r, 100));
        const id = await send(p.g1, alice.accessToken, roomA, `wakes a long-poll on a process that follows on demand (${round})`);
        const sentAt = Date.now();
        const body = await poll;
        const { got, next } = timelineIds(body, roomA).includes(id) ? { got: new Set([id]), next: body.next_batch } : await syncUntil(p.bg, bob.accessToken, body.next_batch, roomA, [id], 5000);
        expect(got.has(id)).toBe(true);
        expect(Date.now() - sentAt, `round ${round}`).toBeLessThan(1500);
        since = next;
      }
    } finally {
      redis.disconnect();
    }
  });

  it('killing the Redis pub/sub connections loses nothing; sync resumes', async () => {
    const s = await syncOn(p.g2, bob.accessToken);
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    await redis.connect();
    try {
      const kill = async () => {
        const list = (await redis.client('LIST')) as string;
        const ours = list.split('\n').filter((l) => l.includes(`name=myelin:${c.serverName}:`) && l.includes(':sub '));
        for (const l of ours) await redis.client('KILL', 'ID', /id=(\d+)/.exec(l)![1]!);
        return ours.length;
      };
      expect(await kill()).toBeGreaterThanOrEqual(6);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await send(p.g1, alice.accessToken, i % 2 ? roomB : roomA, `during outage ${i}`));
      await kill(); // again, while they reconnect
      ids.push(await send(p.g1, alice.accessToken, roomA, 'after outage'));
      const a = await syncUntil(p.g2, bob.accessToken, s.next_batch, roomA, ids.filter((_, i) => i % 2 === 0));
      const b = await syncUntil(p.g2, bob.accessToken, s.next_batch, roomB, ids.filter((_, i) => i % 2 === 1));
      for (const [i, id] of ids.entries()) expect((i % 2 === 0 ? a : b).got.has(id), `event ${i}`).toBe(true);
    } finally {
      redis.disconnect();
    }
  }, 60_000);

  it('kill -9 of an event persister while a client sends: every acknowledged event is there after restart', async () => {
    const s = await syncOn(p.g2, bob.accessToken);
    roomA ??= await roomOn('event_persister1');
    const acked: string[] = [];
    let stop = false;
    const sender = (async () => {
      for (let i = 0; !stop && i < 200; i++) {
        const r = await at(p.g1, alice.accessToken).request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomA)}/send/m.room.message/k${i}-${randomBytes(3).toString('hex')}`, { msgtype: 'm.text', body: `k${i}` });
        if (r.status === 200) acked.push(r.body.event_id);
      }
    })();
    await new Promise((r) => setTimeout(r, 400));
    await w.ep1!.stopProcess('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    await w.ep1!.start();
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await sender;
    expect(acked.length).toBeGreaterThan(0);
    const after = await send(p.g1, alice.accessToken, roomA, 'after restart');
    // Sync on another worker catches up (to the newest event)...
    const { got } = await syncUntil(p.g2, bob.accessToken, s.next_batch, roomA, [after], 40_000);
    expect(got.has(after)).toBe(true);
    // ...and every acknowledged event is in the room's history (sync timelines may be limited).
    const hist = await at(p.g2, bob.accessToken).get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomA)}/messages?dir=b&limit=1000`);
    expect(hist.status, JSON.stringify(hist.body)).toBe(200);
    const inHistory = new Set((hist.body.chunk as any[]).map((e) => e.event_id));
    expect(acked.filter((id) => !inHistory.has(id))).toEqual([]);
  }, 90_000);

  it('a worker started late catches up (events, typing) and accepts tokens from the others', async () => {
    roomB ??= await roomOn('event_persister2');
    const s = await syncOn(p.g1, bob.accessToken);
    const id = await send(p.g1, alice.accessToken, roomB, 'before the late worker');
    await at(p.sw, alice.accessToken).request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomB)}/typing/${encodeURIComponent(alice.userId)}`, { typing: true, timeout: 20_000 });
    await syncUntil(p.g1, bob.accessToken, s.next_batch, roomB, [id]);
    w.g3 = c.addWorker('generic3', { worker_app: 'synapse.app.generic_worker', worker_listeners: [listener(p.g3, ['client'])] }, p.g3);
    await w.g3.start();
    // A token made by g1 before g3 existed: valid on g3, and the event after it arrives.
    const { got } = await syncUntil(p.g3, bob.accessToken, s.next_batch, roomB, [id], 10_000);
    expect(got.has(id)).toBe(true);
    const initial = await syncOn(p.g3, bob.accessToken);
    const typing = (initial.rooms?.join?.[roomB]?.ephemeral?.events ?? []).find((e: any) => e.type === 'm.typing');
    expect(typing?.content.user_ids).toContain(alice.userId);
  }, 60_000);

  it('replication with a wrong secret is refused', async () => {
    const bad = new ReplicationClient({ config: { instance_map: { event_persister2: { host: '127.0.0.1', port: p.ep2r, tls: false } }, worker_replication_secret: 'wrong' } });
    await expect(bad.call('event_persister2', 'rooms_write', {})).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('the metrics listener serves request, stream, lag and waiter metrics', async () => {
    const r = await fetch(`http://127.0.0.1:${p.metrics}/metrics`);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toMatch(/myelin_http_requests_total\{[^}]*route="\/_matrix\/client\/(r0|v3)\/sync"/);
    expect(text).toMatch(/myelin_http_request_duration_seconds_bucket/);
    expect(text).toMatch(/myelin_stream_position\{[^}]*stream="events",instance="event_persister1"|myelin_stream_position\{[^}]*stream="events",instance="min"/);
    expect(text).toMatch(/myelin_replication_lag_seconds_count\{[^}]*stream="events"[^}]*\} [1-9]/);
    expect(text).toMatch(/myelin_notifier_waiters\{[^}]*\} \d+/);
  });
});
