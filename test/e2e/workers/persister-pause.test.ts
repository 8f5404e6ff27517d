/**
 * Issue 6, "with two event persisters, rooms on both progress
 * independently": each reader serves a room up to its own persister's
 * position (the per-writer part of the sync token), so a paused persister
 * (SIGSTOP) holds back only its own rooms. Once it runs again, its pending
 * write completes and reaches every client exactly once, and tokens made by
 * one generic worker keep working on the other.
 */
import { describe, expect, it } from 'vitest';
import { shapesUnderTest, workersShapeUnavailable } from '../../helpers/homeserver.js';
import { enc, RawClient } from '../../helpers/http.js';
import { roomOnPersister, workerTestUser, sleep, useWorkerDeployment } from '../../helpers/worker-rooms.js';

const wanted = shapesUnderTest().includes('workers');
const unavailable = wanted ? workersShapeUnavailable() : 'the workers shape is not in MYELIN_TEST_SHAPES';
if (unavailable) console.warn(`persister pause tests skipped: ${unavailable}`);


const FILTER = enc(JSON.stringify({ room: { timeline: { limit: 100 } } }));

describe.skipIf(!!unavailable)('worker shape: a paused event persister', () => {
  const deployment = useWorkerDeployment();

  const user = () => workerTestUser(deployment());

  /** Timeline event ids per room of one sync response. */
  function timelineIds(body: any, roomIds: string[]): string[] {
    return roomIds.flatMap((r) => (body.rooms?.join?.[r]?.timeline?.events ?? []).map((e: any) => e.event_id as string));
  }

  it('rooms of the other persister keep flowing to long-polls; the paused room catches up exactly once', async () => {
    const [a, watcher] = [await user(), await user()];
    const slowRoom = await roomOnPersister('event_persister1', a, [watcher]);
    const fastRoom = await roomOnPersister('event_persister2', a, [watcher]);
    const rooms = [slowRoom, fastRoom];
    const workers = ['generic_worker1', 'generic_worker2'] as const;
    const on = (i: number) => new RawClient(deployment().instanceUrl(workers[i % 2]!), watcher.token);
    // A token after both joins, from the first generic worker.
    let since: string | undefined;
    const joined = new Set<string>();
    for (let i = 0; i < 50 && joined.size < rooms.length; i++) {
      const r = await on(0).get(`/_matrix/client/v3/sync?timeout=1000&filter=${FILTER}${since ? `&since=${enc(since)}` : ''}`);
      expect(r.status).toBe(200);
      since = r.body.next_batch;
      for (const room of rooms) if (r.body.rooms?.join?.[room]) joined.add(room);
    }
    expect(joined.size).toBe(rooms.length);
    const seen: string[] = [];

    const pid = deployment().pid('event_persister1');
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGSTOP');
    let pending: Promise<{ status: number; body: any }>;
    let fastId: string;
    try {
      // A send in the paused persister's room: it cannot complete yet.
      pending = a.c
        .put(`/_matrix/client/v3/rooms/${enc(slowRoom)}/send/m.room.message/stalled`, { msgtype: 'm.text', body: 'stalled' })
        .catch(() => ({ status: 0, body: undefined }));
      await sleep(500);
      // A long-poll on the second generic worker, woken by a message in the other persister's room.
      const poll = on(1).get(`/_matrix/client/v3/sync?timeout=15000&filter=${FILTER}&since=${enc(since!)}`);
      await sleep(300);
      const sent = await a.c.put(`/_matrix/client/v3/rooms/${enc(fastRoom)}/send/m.room.message/fast`, { msgtype: 'm.text', body: 'fast' });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      fastId = sent.body.event_id;
      // Within the long-poll's own timeout (plus one more poll for a wake that raced the send).
      let got = await poll;
      expect(got.status).toBe(200);
      seen.push(...timelineIds(got.body, rooms));
      since = got.body.next_batch;
      if (!seen.includes(fastId)) {
        got = await on(0).get(`/_matrix/client/v3/sync?timeout=15000&filter=${FILTER}&since=${enc(since!)}`);
        expect(got.status).toBe(200);
        seen.push(...timelineIds(got.body, rooms));
        since = got.body.next_batch;
      }
      expect(seen, 'the message in the running persister room reached the long-poll while the other persister was paused').toContain(fastId);
    } finally {
      process.kill(pid!, 'SIGCONT');
    }
    const slow = await pending!;
    expect(slow.status, JSON.stringify(slow.body)).toBe(200);
    const slowId: string = slow.body.event_id;

    // Syncing on, alternating between the generic workers with each other's tokens.
    for (let i = 0; i < 40 && !seen.includes(slowId); i++) {
      const r = await on(i).get(`/_matrix/client/v3/sync?timeout=2000&filter=${FILTER}&since=${enc(since!)}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      seen.push(...timelineIds(r.body, rooms));
      since = r.body.next_batch;
    }
    expect(seen).toContain(slowId);
    // A few more syncs (both workers) deliver nothing twice.
    const after = await a.c.put(`/_matrix/client/v3/rooms/${enc(slowRoom)}/send/m.room.message/after`, { msgtype: 'm.text', body: 'after' });
    expect(after.status).toBe(200);
    for (let i = 0; i < 40 && !seen.includes(after.body.event_id); i++) {
      const r = await on(i).get(`/_matrix/client/v3/sync?timeout=2000&filter=${FILTER}&since=${enc(since!)}`);
      expect(r.status).toBe(200);
      seen.push(...timelineIds(r.body, rooms));
      since = r.body.next_batch;
    }
    for (let i = 0; i < 2; i++) {
      const r = await on(i).get(`/_matrix/client/v3/sync?timeout=0&filter=${FILTER}&since=${enc(since!)}`);
      expect(r.status).toBe(200);
      seen.push(...timelineIds(r.body, rooms));
      since = r.body.next_batch;
    }
    for (const id of [fastId!, slowId, after.body.event_id as string]) {
      expect(seen.filter((x) => x === id), `${id} delivered exactly once`).toHaveLength(1);
    }
    // /messages from the final sync token shows the paused room's message once, in order.
    const page = await watcher.c.get(`/_matrix/client/v3/rooms/${enc(slowRoom)}/messages?dir=b&limit=10&from=${enc(since!)}`);
    expect(page.status).toBe(200);
    const ids = (page.body.chunk as any[]).map((e) => e.event_id);
    expect(ids.slice(0, 2)).toEqual([after.body.event_id, slowId]);
  }, 120_000);
});
