/**
 * Issue 6 leftovers, with two event persisters:
 *  - server-side search reads each room up to its own persister's position:
 *    a paused persister (SIGSTOP) hides nothing of the other's rooms, and
 *    its own rooms' messages are found once it runs again; `next_batch`
 *    pages cover both persisters' rooms, each hit once;
 *  - a room upgrade creates the new room on the new room's persister and
 *    tombstones the old room on the old room's, whichever they are.
 */
import { describe, expect, it } from 'vitest';
import { shapesUnderTest, workersShapeUnavailable } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { roomOnPersister, workerTestUser, type WorkerTestUser, sleep, useWorkerDeployment } from '../../helpers/worker-rooms.js';
import { EVENT_PERSISTERS } from '../../helpers/worker-deployment.js';
import { roomShardFor } from '../../../src/workers/role.js';

const wanted = shapesUnderTest().includes('workers');
const unavailable = wanted ? workersShapeUnavailable() : 'the workers shape is not in MYELIN_TEST_SHAPES';
if (unavailable) console.warn(`persister search/upgrade tests skipped: ${unavailable}`);

const V3 = '/_matrix/client/v3';

describe.skipIf(!!unavailable)('worker shape: search and upgrades across event persisters', () => {
  const deployment = useWorkerDeployment();

  async function send(u: WorkerTestUser, roomId: string, body: string): Promise<string> {
    const r = await u.c.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/${encodeURIComponent(body)}`, { msgtype: 'm.text', body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.event_id;
  }

  async function search(u: WorkerTestUser, term: string, o: { orderBy?: 'recent' | 'rank'; limit?: number; nextBatch?: string } = {}) {
    const q = o.nextBatch ? `?next_batch=${enc(o.nextBatch)}` : '';
    const r = await u.c.post(`${V3}/search${q}`, {
      search_categories: { room_events: { search_term: term, order_by: o.orderBy ?? 'recent', filter: { limit: o.limit ?? 10 } } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const re = r.body.search_categories.room_events;
    return { ids: (re.results as any[]).map((x) => x.result.event_id as string), next: re.next_batch as string | undefined, count: re.count as number };
  }

  it('a paused persister hides nothing of the other persister rooms; its own are found once it runs again', async () => {
    const a = await workerTestUser(deployment());
    const slowRoom = await roomOnPersister('event_persister1', a, []);
    const fastRoom = await roomOnPersister('event_persister2', a, []);
    const before = [await send(a, slowRoom, 'zebra slow one'), await send(a, fastRoom, 'zebra fast one')];
    expect((await search(a, 'zebra')).ids.sort()).toEqual([...before].sort());

    const pid = deployment().pid('event_persister1');
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGSTOP');
    let pending: Promise<{ status: number; body: any }>;
    let fresh: string;
    try {
      pending = a.c
        .put(`${V3}/rooms/${enc(slowRoom)}/send/m.room.message/stalled`, { msgtype: 'm.text', body: 'zebra slow stalled' })
        .catch(() => ({ status: 0, body: undefined }));
      await sleep(300);
      // Several messages in the running persister's room, beyond the paused one's position.
      for (let i = 0; i < 3; i++) await send(a, fastRoom, `zebra fast filler${i}`);
      fresh = await send(a, fastRoom, 'zebra fast fresh');
      const t0 = Date.now();
      const got = await search(a, 'fresh');
      expect(got.ids, 'a fresh message of the running persister room is found while the other persister is paused').toEqual([fresh]);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      process.kill(pid!, 'SIGCONT');
    }
    const stalled = await pending!;
    expect(stalled.status, JSON.stringify(stalled.body)).toBe(200);
    expect((await search(a, 'stalled')).ids).toEqual([stalled.body.event_id]);

    // Pages of 2 (recent first) over both persisters' rooms: every hit once, newest first.
    const all: string[] = [];
    let next: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await search(a, 'zebra', { limit: 2, ...(next ? { nextBatch: next } : {}) });
      all.push(...page.ids);
      next = page.next;
      if (!next) break;
    }
    expect(all).toHaveLength(7);
    expect(new Set(all).size).toBe(7);
    // The stalled message was persisted once its persister ran again: the newest.
    expect(all.slice(0, 2)).toEqual([stalled.body.event_id, fresh!]);
    for (const id of before) expect(all).toContain(id);
  }, 120_000);

  it('upgrades across persisters: the new room on its own persister, the tombstone on the old room one', async () => {
    const a = await workerTestUser(deployment());
    const b = await workerTestUser(deployment());
    let room = await roomOnPersister('event_persister1', a, [b]);
    await send(a, room, 'before the upgrades');
    const seen = new Set<string>();
    for (let i = 0; i < 16 && (seen.size < 3 || i < 8); i++) {
      const from = roomShardFor(room, EVENT_PERSISTERS);
      // v10 and v12 rooms in turn.
      const up = await a.c.post(`${V3}/rooms/${enc(room)}/upgrade`, { new_version: i % 2 ? '12' : '10' });
      expect(up.status, JSON.stringify(up.body)).toBe(200);
      const next = up.body.replacement_room as string;
      const to = roomShardFor(next, EVENT_PERSISTERS);
      seen.add(from === to ? 'same' : `${from}->${to}`);

      const tomb = await a.c.get(`${V3}/rooms/${enc(room)}/state/m.room.tombstone/`);
      expect(tomb.body.replacement_room).toBe(next);
      const pl = await a.c.get(`${V3}/rooms/${enc(room)}/state/m.room.power_levels/`);
      expect(pl.body.events_default).toBe(50);
      const create = await a.c.get(`${V3}/rooms/${enc(next)}/state/m.room.create/`);
      expect(create.body.predecessor.room_id).toBe(room);
      // The new room works: the upgrader writes, the other member joins and reads.
      const msg = await send(a, next, `after upgrade ${i}`);
      expect((await b.c.post(`${V3}/join/${enc(next)}`, {})).status).toBe(200);
      const page = await b.c.get(`${V3}/rooms/${enc(next)}/messages?dir=b&limit=20`);
      expect(page.status).toBe(200);
      expect((page.body.chunk as any[]).map((e) => e.event_id)).toContain(msg);
      room = next;
    }
    expect(seen.has('event_persister1->event_persister2') || seen.has('event_persister2->event_persister1')).toBe(true);
  }, 180_000);
});
