import { expect, it } from 'vitest';
import { describeEngines } from './engines.js';

const COLS = `stream_ordering, event_id, room_id, type, sender, depth, topological_ordering, origin_server_ts, json,
  relates_to_id, rel_type, received_ts`;

describeEngines('events_relates index', (db) => {
  it('holds only events that relate to another (partial index)', async () => {
    const def =
      db().engine === 'sqlite'
        ? (await db().queryOne<{ sql: string }>("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'events_relates'"))?.sql
        : (await db().queryOne<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE indexname = 'events_relates'"))?.indexdef;
    expect(def).toMatch(/WHERE[\s(]+relates_to_id IS NOT NULL/i);
  });

  it('relation lookups still find their events', async () => {
    const row = (n: number, rel: string | null) => [n, `$rel${n}`, '!r:x', 'm.room.message', '@a:x', n, n, n, '{}', rel, rel ? 'm.annotation' : null, 0];
    for (const r of [row(1, null), row(2, '$rel1'), row(3, null), row(4, '$rel1')]) {
      await db().execute(`INSERT INTO events (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r);
    }
    const rows = await db().query<{ event_id: string }>(
      "SELECT event_id FROM events WHERE relates_to_id IN (?) AND rel_type = 'm.annotation' ORDER BY stream_ordering",
      ['$rel1'],
    );
    expect(rows.map((r) => r.event_id)).toEqual(['$rel2', '$rel4']);
    if (db().engine === 'sqlite') {
      // The lookup uses the partial index (relates_to_id IN (…) implies NOT NULL).
      const plan = await db().query<{ detail: string }>(
        "EXPLAIN QUERY PLAN SELECT event_id FROM events WHERE relates_to_id IN (?) AND rel_type = 'm.annotation'",
        ['$rel1'],
      );
      expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING INDEX events_relates/);
    }
  });
});
