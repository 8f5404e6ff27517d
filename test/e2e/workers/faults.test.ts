/**
 * Fault tests of the worker shape (DESIGN.md §9, issue 6): processes killed
 * and Redis connections cut mid-traffic; nothing acknowledged is lost and
 * every client's sync catches up. Requests that must reach one process are
 * sent to its own client listener (instanceUrl), not through nginx.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shapesUnderTest, workersShapeUnavailable } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';
import { roomOnPersister, workerTestUser, type WorkerTestUser, sleep, useWorkerDeployment } from '../../helpers/worker-rooms.js';
import { redisAddress } from '../../helpers/worker-deployment.js';

const wanted = shapesUnderTest().includes('workers');
const unavailable = wanted ? workersShapeUnavailable() : 'the workers shape is not in MYELIN_TEST_SHAPES';
if (unavailable) console.warn(`worker fault tests skipped: ${unavailable}`);

type U = WorkerTestUser;

/** Sync the timeline of `roomId` from `since` until every id in `want` has been seen (or the deadline). */
async function syncUntil(c: RawClient, roomId: string, since: string | undefined, want: Set<string>, ms = 30_000): Promise<{ seen: Set<string>; next: string }> {
  const seen = new Set<string>();
  const deadline = Date.now() + ms;
  let next = since;
  while (Date.now() < deadline && [...want].some((id) => !seen.has(id))) {
    const filter = enc(JSON.stringify({ room: { timeline: { limit: 100 } } }));
    const r = await c.get(`/_matrix/client/v3/sync?timeout=2000&filter=${filter}${next ? `&since=${enc(next)}` : ''}`);
    if (r.status !== 200) {
      await sleep(200); // a restarting process behind nginx: try again
      continue;
    }
    const tl = r.body.rooms?.join?.[roomId]?.timeline;
    for (const e of tl?.events ?? []) seen.add(e.event_id);
    // A gapped timeline (limited) is caught up by /messages, as a client does.
    if (tl?.limited && tl.prev_batch) for (const id of await messagesBack(c, roomId, tl.prev_batch, 500)) seen.add(id);
    next = r.body.next_batch;
  }
  return { seen, next: next! };
}

async function messagesBack(c: RawClient, roomId: string, from: string, max: number): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined = from;
  while (token && out.length < max) {
    const r: { status: number; body: any } = await c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=100&from=${enc(token)}`);
    if (r.status !== 200 || !r.body.chunk?.length) break;
    for (const e of r.body.chunk) out.push(e.event_id);
    token = r.body.end;
  }
  return out;
}

describe.skipIf(!!unavailable)('worker shape: faults', () => {
  const deployment = useWorkerDeployment();

  const user = () => workerTestUser(deployment());

  /** Sends `n` messages from `u` one after another; returns the acknowledged event ids (failures are allowed while a process is down). */
  async function sender(u: U, roomId: string, n: number, tag: string, pauseMs = 20): Promise<{ acked: string[]; failed: number }> {
    const acked: string[] = [];
    let failed = 0;
    for (let i = 0; i < n; i++) {
      const r = await u.c
        .put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${tag}-${i}`, { msgtype: 'm.text', body: `${tag} ${i}` })
        .catch(() => ({ status: 0, body: undefined }) as const);
      if (r.status === 200 && r.body?.event_id) acked.push(r.body.event_id);
      else failed++;
      await sleep(pauseMs);
    }
    return { acked, failed };
  }

  it('kill -9 of an event persister while clients send: every acknowledged event survives, every sync catches up', async () => {
    const [a, b, watcher] = [await user(), await user(), await user()];
    const room = await roomOnPersister('event_persister1', a, [b, watcher]);
    const other = await roomOnPersister('event_persister2', a, [b, watcher]);
    const before = (await watcher.c.get('/_matrix/client/v3/sync?timeout=0')).body.next_batch as string;

    const traffic = Promise.all([sender(a, room, 60, 'a'), sender(b, room, 60, 'b'), sender(a, other, 40, 'o')]);
    await sleep(600);
    await deployment().killInstance('event_persister1', 'SIGKILL');
    // The other persister's rooms keep going while this one is down.
    const during = await sender(b, other, 5, 'during', 0);
    expect(during.acked).toHaveLength(5);
    await sleep(1500);
    await deployment().startInstance('event_persister1');
    const [ra, rb, ro] = await traffic;
    // Sending works again after the restart.
    const after = await sender(a, room, 5, 'after', 0);
    expect(after.acked).toHaveLength(5);

    const inRoom = new Set([...ra.acked, ...rb.acked, ...after.acked]);
    const inOther = new Set([...ro.acked, ...during.acked]);
    expect(inRoom.size).toBeGreaterThan(10);
    // Every acknowledged event is there (read through nginx, i.e. a generic worker).
    for (const id of inRoom) {
      const r = await a.c.get(`/_matrix/client/v3/rooms/${enc(room)}/event/${enc(id)}`);
      expect(r.status, `event ${id}: ${JSON.stringify(r.body)}`).toBe(200);
    }
    const history = new Set(await messagesBack(a.c, room, (await a.c.get(`/_matrix/client/v3/rooms/${enc(room)}/messages?dir=b&limit=1`)).body.start, 1000));
    for (const id of inRoom) expect(history.has(id), `${id} in /messages`).toBe(true);
    // Every client's sync (from before the traffic) catches up, in both rooms.
    for (const u of [a, b, watcher]) {
      const s1 = await syncUntil(u.c, room, before, inRoom);
      expect([...inRoom].filter((id) => !s1.seen.has(id)), `${u.userId} missing in ${room}`).toEqual([]);
      const s2 = await syncUntil(u.c, other, before, inOther);
      expect([...inOther].filter((id) => !s2.seen.has(id)), `${u.userId} missing in ${other}`).toEqual([]);
    }
  }, 120_000);

  it('Redis pub/sub connections cut mid-traffic: nothing lost, sync resumes', async () => {
    const [a, watcher] = [await user(), await user()];
    const room = await roomOnPersister('event_persister2', a, [watcher]);
    const { next: before } = await syncUntil(watcher.c, room, undefined, new Set());
    const traffic = sender(a, room, 40, 'r', 30);
    let killed = 0;
    for (let k = 0; k < 3; k++) {
      await sleep(300);
      killed += killRedisConnections(deployment().serverName);
    }
    expect(killed).toBeGreaterThanOrEqual(7); // at least every process's subscription, once
    const { acked } = await traffic;
    expect(acked.length).toBe(40); // Redis is a doorbell: writes never needed it
    const want = new Set(acked);
    // Both generic workers (directly, not via nginx) deliver everything.
    for (const w of ['generic_worker1', 'generic_worker2'] as const) {
      const s = await syncUntil(new RawClient(deployment().instanceUrl(w), watcher.token), room, before, want);
      expect([...want].filter((id) => !s.seen.has(id)), `missing on ${w}`).toEqual([]);
    }
    // And live delivery works again afterwards: a long-poll is woken by a new event.
    const { next } = await syncUntil(watcher.c, room, before, want);
    const poll = watcher.c.get(`/_matrix/client/v3/sync?timeout=20000&since=${enc(next)}`);
    await sleep(300);
    const [late] = (await sender(a, room, 1, 'late', 0)).acked;
    const r = await poll;
    expect(r.status).toBe(200);
    expect((r.body.rooms?.join?.[room]?.timeline?.events ?? []).map((e: any) => e.event_id)).toContain(late);
  }, 120_000);

  it('a worker started long after the others catches up', async () => {
    const [a, watcher] = [await user(), await user()];
    const room = await roomOnPersister('event_persister1', a, [watcher]);
    const old = (await new RawClient(deployment().instanceUrl('generic_worker2'), watcher.token).get('/_matrix/client/v3/sync?timeout=0')).body.next_batch as string;
    await deployment().stopInstance('generic_worker2');
    const { acked } = await sender(a, room, 20, 'late-start', 0);
    expect(acked).toHaveLength(20);
    await sleep(2000);
    await deployment().startInstance('generic_worker2');
    const gw2 = new RawClient(deployment().instanceUrl('generic_worker2'), watcher.token);
    const want = new Set(acked);
    // From an old token, and from scratch.
    const inc = await syncUntil(gw2, room, old, want);
    expect([...want].filter((id) => !inc.seen.has(id))).toEqual([]);
    const initial = await syncUntil(gw2, room, undefined, want);
    expect([...want].filter((id) => !initial.seen.has(id))).toEqual([]);
    // It is live too: a message sent now reaches its long-poll.
    const poll = gw2.get(`/_matrix/client/v3/sync?timeout=20000&since=${enc(inc.next)}`);
    await sleep(300);
    const [fresh] = (await sender(a, room, 1, 'fresh', 0)).acked;
    const r = await poll;
    expect((r.body.rooms?.join?.[room]?.timeline?.events ?? []).map((e: any) => e.event_id)).toContain(fresh);
  }, 120_000);

  it('a stream writer that is down answers through nginx with a Matrix error, and works again after restart', async () => {
    const a = await user();
    const room = await roomOnPersister('event_persister2', a, []);
    const typing = () => a.c.put(`/_matrix/client/v3/rooms/${enc(room)}/typing/${enc(a.userId)}`, { typing: true, timeout: 5000 });
    await deployment().killInstance('stream_writer', 'SIGKILL');
    const down = await typing();
    expect(down.status).toBe(502);
    expect(down.body.errcode).toBe('M_UNKNOWN'); // JSON, not nginx's HTML page
    await deployment().startInstance('stream_writer');
    const up = await typing();
    expect(up.status, JSON.stringify(up.body)).toBe(200);
  }, 60_000);

  it('a sync token from one worker gives the same result on another', async () => {
    const [a, b] = [await user(), await user()];
    const r1 = await roomOnPersister('event_persister1', a, [b]);
    const r2 = await roomOnPersister('event_persister2', a, [b]);
    const gw1 = new RawClient(deployment().instanceUrl('generic_worker1'), b.token);
    const gw2 = new RawClient(deployment().instanceUrl('generic_worker2'), b.token);
    const token = (await gw1.get('/_matrix/client/v3/sync?timeout=0')).body.next_batch as string;
    const sent = [...(await sender(a, r1, 5, 'x', 0)).acked, ...(await sender(a, r2, 5, 'y', 0)).acked];
    expect(sent).toHaveLength(10);
    // Wait until both workers have seen everything, then ask both the same question.
    for (const w of [gw1, gw2]) {
      await syncUntil(w, r1, token, new Set(sent.slice(0, 5)));
      await syncUntil(w, r2, token, new Set(sent.slice(5)));
    }
    const filter = enc(JSON.stringify({ room: { timeline: { limit: 50 } }, presence: { not_types: ['*'] } }));
    const summary = (body: any) =>
      Object.fromEntries(
        Object.entries(body.rooms?.join ?? {}).map(([id, room]: [string, any]) => [
          id,
          { timeline: room.timeline.events.map((e: any) => e.event_id), limited: room.timeline.limited, state: (room.state?.events ?? []).map((e: any) => e.event_id).sort() },
        ]),
      );
    const on1 = await gw1.get(`/_matrix/client/v3/sync?timeout=0&filter=${filter}&since=${enc(token)}`);
    const on2 = await gw2.get(`/_matrix/client/v3/sync?timeout=0&filter=${filter}&since=${enc(token)}`);
    expect(on1.status).toBe(200);
    expect(on2.status).toBe(200);
    expect(summary(on1.body)[r1]?.timeline).toEqual(sent.slice(0, 5));
    expect(summary(on1.body)[r2]?.timeline).toEqual(sent.slice(5));
    expect(summary(on2.body)).toEqual(summary(on1.body));
    // The tokens they hand out are interchangeable as well: nothing new from either.
    const again = await gw1.get(`/_matrix/client/v3/sync?timeout=0&filter=${filter}&since=${enc(on2.body.next_batch)}`);
    expect(again.status).toBe(200);
    expect(Object.keys(again.body.rooms?.join ?? {})).toEqual([]);
  }, 120_000);

  it('a send made on a generic worker, or on the other persister, is forwarded to the room\'s persister', async () => {
    const [a, b] = [await user(), await user()];
    const rooms = [await roomOnPersister('event_persister1', a, [b]), await roomOnPersister('event_persister2', a, [b])];
    const gw = new RawClient(deployment().instanceUrl('generic_worker1'), a.token);
    for (const roomId of rooms) {
      const sent = await gw.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/fwd`, { msgtype: 'm.text', body: 'forwarded' });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      // A retry on another way in (nginx: the persister itself) is the same request.
      const again = await a.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/fwd`, { msgtype: 'm.text', body: 'forwarded' });
      expect(again.body.event_id).toBe(sent.body.event_id);
      const ev = await new RawClient(deployment().baseUrl, b.token).get(`/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(sent.body.event_id)}`);
      expect(ev.status).toBe(200);
      expect(ev.body.content.body).toBe('forwarded');
    }
    // The persister that does not own a room (nginx's choice when the owner is down) forwards it too.
    const [r1, r2] = rooms as [string, string];
    for (const [roomId, other] of [[r1, 'event_persister2'], [r2, 'event_persister1']] as const) {
      const via = new RawClient(deployment().instanceUrl(other), a.token);
      const sent = await via.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/fwd2`, { msgtype: 'm.text', body: 'via the other' });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      const again = await a.c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/fwd2`, { msgtype: 'm.text', body: 'via the other' });
      expect(again.body.event_id).toBe(sent.body.event_id);
    }
  }, 60_000);

  it('a persister reading a room it does not own sees the room as it is now, not as it first loaded it', async () => {
    const [a, b, c] = [await user(), await user(), await user()];
    for (const [owner, other] of [['event_persister1', 'event_persister2'], ['event_persister2', 'event_persister1']] as const) {
      const roomId = await roomOnPersister(owner, a, [b]);
      const reader = new RawClient(deployment().instanceUrl(other), a.token);
      const members = async () => Object.keys((await reader.get(`/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`)).body.joined ?? {}).sort();
      const before = await members();
      expect(before).not.toContain(c.userId);
      // c joins through nginx (the owner); then the other persister is asked again.
      expect((await c.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/join`, {})).status).toBe(200);
      expect(await members()).toContain(c.userId);
    }
  }, 60_000);
});

/** Kills the Redis connections of one deployment only (named myelin:<server_name>:...); the shared Redis server stays up. */
function killRedisConnections(serverName: string): number {
  const { host, port } = redisAddress();
  const cli = (...args: string[]) => spawnSync('redis-cli', ['-h', host, '-p', String(port), ...args], { encoding: 'utf8' });
  const list = cli('CLIENT', 'LIST', 'TYPE', 'pubsub');
  if (list.error) throw new Error(`redis-cli: ${list.error.message}`);
  const ids = list.stdout
    .split('\n')
    .filter((l) => l.includes(` name=myelin:${serverName}:`))
    .map((l) => /\bid=(\d+)/.exec(l)?.[1])
    .filter((x): x is string => !!x);
  for (const id of ids) cli('CLIENT', 'KILL', 'ID', id);
  return ids.length;
}
