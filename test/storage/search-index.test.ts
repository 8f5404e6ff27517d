/**
 * The search index with several event persisters (issue 6), on both
 * engines: the index follows each writer's own position (a slow writer
 * holds back only its own rows, and none is indexed twice or skipped), and
 * a search reads each room up to its persister's position.
 */
import { expect, it } from 'vitest';
import { RoomsExtraStore } from '../../src/storage/rooms-extra/store.js';
import type { EventsPosition } from '../../src/streams/tokens.js';
import { describeEngines } from './engines.js';

describeEngines('search index per events writer', (db) => {
  const store = () => new RoomsExtraStore(db());
  /** Rooms !a (writer p1) and !b (writer p2). */
  const writerOf: Record<string, string> = { '!a:t': 'p1', '!b:t': 'p2' };

  async function insert(so: number, roomId: string, body: string) {
    await db().execute(
      `INSERT INTO events (stream_ordering, event_id, room_id, type, sender, depth, topological_ordering, origin_server_ts, json, instance_name, received_ts)
       VALUES (?, ?, ?, 'm.room.message', '@u:t', ?, ?, ?, ?, ?, 0)`,
      [so, `$e${so}`, roomId, so, so, so, JSON.stringify({ type: 'm.room.message', content: { body } }), writerOf[roomId]],
    );
  }

  async function indexed(): Promise<number[]> {
    const rows = await db().query('SELECT stream_ordering FROM event_search ORDER BY stream_ordering');
    return rows.map((r) => Number(r.stream_ordering));
  }

  const hits = async (roomUpTo?: (roomId: string) => number) =>
    (
      await store().search({ words: ['hello'], roomIds: ['!a:t', '!b:t'], keys: ['content.body'], orderBy: 'recent', limit: 50, ...(roomUpTo ? { roomUpTo } : {}) })
    ).hits.map((h) => h.streamOrdering);

  it('indexes each writer up to its own position, in batches, each row once', async () => {
    // p1 wrote 1, 3, 5, 7, 9 (all committed); p2 wrote 2, 4 and has 6, 8 in flight.
    for (const so of [1, 3, 5, 7, 9]) await insert(so, '!a:t', `hello a${so}`);
    for (const so of [2, 4]) await insert(so, '!b:t', `hello b${so}`);
    const at: EventsPosition = { min: 5, writers: { p1: 9, p2: 5 } };
    // Batches of 2: the position moves to the last row read, writer by writer.
    let rounds = 0;
    while (!(await store().indexSearch(at, 2))) rounds++;
    expect(rounds).toBeGreaterThan(0);
    expect(await indexed()).toEqual([1, 2, 3, 4, 5, 7, 9]);
    const pos = await db().queryOne('SELECT stream_ordering, writers FROM event_search_position WHERE id = 1');
    expect({ min: Number(pos?.stream_ordering), writers: pos?.writers }).toEqual({ min: 5, writers: '{"p1":9}' });
    expect(await store().indexSearch(at)).toBe(true); // nothing to do

    // p2's rows 6 and 8 commit (and p1 writes 10): the minimum passes p1's old part; nothing doubles.
    await insert(6, '!b:t', 'hello b6');
    await insert(8, '!b:t', 'hello b8');
    await insert(10, '!a:t', 'hello a10');
    expect(await store().indexSearch({ min: 10 })).toBe(true);
    expect(await indexed()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const after = await db().queryOne('SELECT stream_ordering, writers FROM event_search_position WHERE id = 1');
    expect({ min: Number(after?.stream_ordering), writers: after?.writers }).toEqual({ min: 10, writers: '' });
  });

  it('reads each room up to its own persister position (no ceiling: every indexed row)', async () => {
    expect(await hits()).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    // This reader has seen p1 up to 7 and p2 up to 8.
    const seen: Record<string, number> = { p1: 7, p2: 8 };
    expect(await hits((r) => seen[writerOf[r]!]!)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    // `before` (recent pagination) combines with the ceilings.
    const page = await store().search({
      words: ['hello'], roomIds: ['!a:t', '!b:t'], keys: ['content.body'], orderBy: 'recent', limit: 3, before: 7, roomUpTo: (r) => seen[writerOf[r]!]!,
    });
    expect(page.hits.map((h) => h.streamOrdering)).toEqual([6, 5, 4]);
    expect(page.count).toBe(8);
  });

  it('a single writer moves only the minimum (the monolith range)', async () => {
    await insert(11, '!a:t', 'hello a11');
    expect(await store().indexSearch(11)).toBe(true);
    expect((await indexed()).slice(-1)).toEqual([11]);
    const pos = await db().queryOne('SELECT stream_ordering, writers FROM event_search_position WHERE id = 1');
    expect({ min: Number(pos?.stream_ordering), writers: pos?.writers }).toEqual({ min: 11, writers: '' });
  });
});
