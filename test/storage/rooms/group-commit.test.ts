/**
 * The event persister's group commit (`persistEventBatches`): on PostgreSQL
 * its one merged statement has the same text whatever the row counts (rows
 * as one array parameter per column), so that it runs as a named prepared
 * statement; every value comes back exactly as written on both engines; a
 * text PostgreSQL cannot store fails the commit as before, writing nothing.
 */
import { expect, it } from 'vitest';
import type { RoomEvent } from '../../../src/matrix/types.js';
import { PushStore, type PushRow } from '../../../src/storage/live/push-store.js';
import { PostgresDb } from '../../../src/storage/postgres.js';
import { SqlRoomStore } from '../../../src/storage/rooms/sql-store.js';
import type { EventToPersist, PersistBatch } from '../../../src/storage/rooms/store.js';
import { describeEngines } from '../engines.js';

const SERVER = 'gc.test';
const alice = `@alice:${SERVER}`;
const bob = `@bob:${SERVER}`;

/** Strings that an escaping or quoting slip would change. */
const TRICKY = [
  'plain',
  'with "double" and \'single\' quotes',
  'back\\slash \\" \\\\ and a trailing backslash \\',
  '{braces},commas, NULL',
  'NULL',
  '',
  '  spaces  ',
  'unicode: é ß 中文 😀 \u2028 \u200b',
  'newline\nand\ttab',
];

let streamN = 1_000;
let groupN = 1_000;

function event(roomId: string, n: number, o: Partial<RoomEvent> = {}): RoomEvent {
  return {
    event_id: `$gc${n}:${SERVER}`,
    room_id: roomId,
    type: 'm.room.message',
    sender: alice,
    content: { msgtype: 'm.text', body: TRICKY[n % TRICKY.length]!, n: null, big: Number.MAX_SAFE_INTEGER, neg: -Number.MAX_SAFE_INTEGER },
    origin_server_ts: 1_700_000_000_000 + n,
    depth: Number.MAX_SAFE_INTEGER - 10 + (n % 5),
    prev_events: [],
    auth_events: [],
    hashes: { sha256: 'x' },
    signatures: {},
    ...o,
  } as RoomEvent;
}

/** A batch of `messages` messages in `roomId`, the first with a membership change and a txn id if asked. */
function batch(roomId: string, messages: number, o: { member?: string; txn?: string; push?: PushRow[]; pushStore?: PushStore } = {}): PersistBatch {
  const events: EventToPersist[] = [];
  if (o.member !== undefined) {
    const ev = event(roomId, ++streamN, {
      type: 'm.room.member',
      state_key: bob,
      sender: bob,
      content: { membership: 'join', displayname: o.member, avatar_url: 'mxc://x/"y"' },
    });
    events.push({
      event: ev,
      streamOrdering: streamN,
      stateGroup: ++groupN,
      newStateGroup: { id: groupN, prevGroup: null, deltaDepth: 0, entries: new Map([[`m.room.member\u0000${bob}`, ev.event_id]]) },
      unsignedExtra: { prev_content: { displayname: o.member } } as any,
    });
  }
  for (let i = 0; i < messages; i++) {
    const n = ++streamN;
    events.push({
      event: event(roomId, n),
      streamOrdering: n,
      stateGroup: groupN,
      ...(i === 0 && o.txn ? { txn: { userId: alice, deviceId: 'DEV"\\', scope: `send/${roomId}/m.room.message`, txnId: o.txn } } : {}),
    });
  }
  const last = events[events.length - 1]!.event.event_id;
  const out: PersistBatch = { roomId, events, forwardExtremities: [last] };
  if (o.push && o.pushStore) {
    const store = o.pushStore;
    out.extraRows = [{ write: (tx, rows: PushRow[]) => store.insertPushRows(tx, rows), rows: o.push }];
  }
  return out;
}

/** PostgreSQL: records the statements the pool sends (text and statement name). */
function recordSent(d: unknown): Array<{ text: string; name?: string }> {
  const sent: Array<{ text: string; name?: string }> = [];
  if (!(d instanceof PostgresDb)) return sent;
  const pool = d.pool as unknown as { query: (...a: any[]) => unknown };
  const query = pool.query.bind(pool);
  pool.query = (...a: any[]) => {
    const c = a[0];
    if (typeof c === 'object' && c && typeof c.text === 'string') sent.push({ text: c.text, name: c.name });
    else if (typeof c === 'string') sent.push({ text: c });
    return query(...a);
  };
  return sent;
}

describeEngines('group commit', (db, engine) => {
  it('sends one statement whose text does not depend on the number of rows (PostgreSQL), and writes every row', async () => {
    const store = new SqlRoomStore(db());
    const sent = recordSent(db());
    const rooms = ['!gc1:x', '!gc2:x', '!gc3:x'];
    // Groups of different sizes with the same tables: messages with a txn id.
    await store.persistEventBatches([batch(rooms[0]!, 1, { txn: 't1' })]);
    await store.persistEventBatches([batch(rooms[0]!, 3, { txn: 't2' }), batch(rooms[1]!, 2, { txn: 't3' })]);
    await store.persistEventBatches([batch(rooms[0]!, 2, { txn: 't4' }), batch(rooms[1]!, 1, { txn: 't5' }), batch(rooms[2]!, 7, { txn: 't6' })]);
    // With a membership change (state group, current state, memberships).
    await store.persistEventBatches([batch(rooms[1]!, 1, { member: 'Bob', txn: 't7' })]);
    await store.persistEventBatches([batch(rooms[1]!, 4, { member: 'Bob "the" \\ builder 😀', txn: 't8' }), batch(rooms[2]!, 2, { txn: 't9' })]);
    if (engine === 'postgres') {
      expect(sent).toHaveLength(5);
      const [a, b, c, d, e] = sent;
      expect(b!.text).toBe(a!.text);
      expect(c!.text).toBe(a!.text);
      expect(e!.text).toBe(d!.text);
      expect(d!.text).not.toBe(a!.text);
      // Named from its second run on (a text seen once runs unnamed).
      expect(a!.name).toBeUndefined();
      expect(b!.name).toBeDefined();
      expect(c!.name).toBe(b!.name);
      expect(e!.name).toBeDefined();
      expect(e!.name).not.toBe(b!.name);
      expect(a!.text).toMatch(/^WITH w0 AS \(INSERT INTO events .* SELECT \* FROM unnest\(\$1::bigint\[\], \$2::text\[\]/s);
    }
    const count = await db().queryOne<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE room_id IN (?, ?, ?)', rooms);
    expect(Number(count!.n)).toBe(1 + 5 + 10 + 2 + 7);
    for (const r of rooms) expect((await store.getForwardExtremities(r)).length).toBe(1);
    expect(await store.getForwardExtremities(rooms[2]!)).toEqual([`$gc${streamN}:${SERVER}`]);
    const txn = await db().query('SELECT txn_id, device_id, scope FROM event_txn_ids WHERE user_id = ? ORDER BY txn_id', [alice]);
    expect(txn.map((r) => r.txn_id)).toEqual(['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9']);
    expect(txn.every((r) => r.device_id === 'DEV"\\')).toBe(true);
    expect(txn.map((r) => r.scope)).toEqual([0, 0, 1, 0, 1, 2, 1, 1, 2].map((i) => `send/${rooms[i]}/m.room.message`));
  });

  it('reads back every value exactly as written: quotes, backslashes, unicode, nulls, large numbers', async () => {
    const store = new SqlRoomStore(db());
    const push = new PushStore(db());
    const roomId = '!rt:x';
    const name = 'Bob "the" \\builder\\ {x,y} NULL 😀 é';
    const pushRows: PushRow[] = [];
    const b = batch(roomId, TRICKY.length, { member: name, txn: 'rt"\\😀', push: pushRows, pushStore: push });
    for (const p of b.events.slice(1)) {
      pushRows.push({
        kind: 'default',
        roomId,
        streamOrdering: p.streamOrdering,
        eventId: p.event.event_id,
        sender: alice,
        threadId: 'main',
        highlight: true,
        actions: ['notify', { set_tweak: 'sound', value: 'de"fa\\ult 😀' }],
        receivedTs: Number.MAX_SAFE_INTEGER,
      });
      pushRows.push({
        kind: 'exception',
        userId: bob,
        roomId,
        streamOrdering: p.streamOrdering,
        eventId: p.event.event_id,
        threadId: '$thread"\\',
        notif: false,
        highlight: true,
        actions: [],
        receivedTs: 1,
      });
    }
    await store.persistEventBatches([b]);
    for (const p of b.events) {
      const got = await store.getEvent(p.event.event_id);
      expect(got?.event).toEqual(p.event);
      expect(got?.streamOrdering).toBe(p.streamOrdering);
      expect(got?.topologicalOrdering).toBe(p.event.depth);
    }
    const row = await db().queryOne('SELECT * FROM events WHERE event_id = ?', [b.events[1]!.event.event_id]);
    expect(row).toMatchObject({
      state_key: null,
      rejected_reason: null,
      relates_to_id: null,
      unsigned_extra: null,
      outlier: 0,
      contains_url: 0,
      origin_server_ts: b.events[1]!.event.origin_server_ts,
      txn_id: 'rt"\\😀',
      txn_device_id: 'DEV"\\',
    });
    const member = await db().queryOne('SELECT * FROM room_memberships WHERE room_id = ?', [roomId]);
    expect(member).toMatchObject({ user_id: bob, membership: 'join', display_name: name, avatar_url: 'mxc://x/"y"' });
    const memberEvent = await db().queryOne('SELECT unsigned_extra, state_key FROM events WHERE event_id = ?', [b.events[0]!.event.event_id]);
    expect(JSON.parse(memberEvent!.unsigned_extra)).toEqual({ prev_content: { displayname: name } });
    expect(memberEvent!.state_key).toBe(bob);
    const groupRow = await db().queryOne('SELECT prev_state_group, delta_depth FROM state_groups WHERE id = ?', [b.events[0]!.stateGroup]);
    expect(groupRow).toEqual({ prev_state_group: null, delta_depth: 0 });
    const defaults = await db().query('SELECT * FROM event_push_defaults WHERE room_id = ? ORDER BY stream_ordering', [roomId]);
    expect(defaults).toHaveLength(TRICKY.length);
    expect(defaults[0]).toMatchObject({ highlight: 1, thread_id: 'main', received_ts: Number.MAX_SAFE_INTEGER });
    expect(JSON.parse(defaults[0]!.actions)).toEqual(['notify', { set_tweak: 'sound', value: 'de"fa\\ult 😀' }]);
    const exceptions = await db().query('SELECT * FROM event_push_exceptions WHERE room_id = ? ORDER BY stream_ordering', [roomId]);
    expect(exceptions).toHaveLength(TRICKY.length);
    expect(exceptions[0]).toMatchObject({ user_id: bob, notif: 0, highlight: 0, thread_id: '$thread"\\', actions: '[]', received_ts: 1 });
  });

  it('fails a commit with a NUL in a text column as before: PostgreSQL refuses it (22021) and writes nothing; SQLite stores it', async () => {
    const store = new SqlRoomStore(db());
    const roomId = '!nul:x';
    const b = batch(roomId, 2, { member: 'nul\u0000name', txn: 'tnul' });
    const other = batch('!nul-other:x', 1, { txn: 'tnul2' });
    if (engine === 'postgres') {
      await expect(store.persistEventBatches([other, b])).rejects.toMatchObject({ code: '22021' });
      const n = await db().queryOne<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE room_id IN (?, ?)', [roomId, '!nul-other:x']);
      expect(Number(n!.n)).toBe(0);
      expect(await db().query('SELECT * FROM event_txn_ids WHERE txn_id IN (?, ?)', ['tnul', 'tnul2'])).toEqual([]);
      // The other batch alone (the event creator's retry) commits.
      await store.persistEventBatches([other]);
      expect(await store.getEvent(other.events[0]!.event.event_id)).toBeDefined();
    } else {
      await store.persistEventBatches([other, b]);
      const m = await db().queryOne('SELECT display_name FROM room_memberships WHERE room_id = ?', [roomId]);
      expect(m!.display_name).toBe('nul\u0000name');
    }
  });

  it.runIf(engine === 'postgres')('deletes the old forward extremities through the primary key in a generic plan', async () => {
    const pool = (db() as PostgresDb).pool;
    for (let i = 0; i < 300; i++) {
      await db().execute('INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)', [`!fe${i % 50}:x`, `$fe${i}`]);
    }
    // The statement as the group commit sends it (its text, not its values).
    const sent = recordSent(db());
    await new SqlRoomStore(db()).persistEventBatches([batch('!fe-probe:x', 1)]);
    const merged = sent[0]!.text;
    const del = /w\d+ AS \((\/\* disjoint rows \*\/ DELETE FROM event_forward_extremities .*?\)\))\)/s.exec(merged)?.[1];
    expect(del).toBeDefined();
    const client = await pool.connect();
    try {
      await client.query('SET plan_cache_mode = force_generic_plan');
      // Its own placeholders from $1: the parameters it takes in the merged statement, renumbered.
      let k = 0;
      const own = del!.replace(/\$\d+/g, () => `$${++k}`);
      await client.query(`PREPARE fe_delete_plan(text[], text[], text[]) AS ${own}`);
      const plan = await client.query(`EXPLAIN EXECUTE fe_delete_plan('{"!fe1:x","!fe2:x"}', '{"!fe1:x"}', '{"$fe1"}')`);
      const text = plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index (Only )?Scan (using|on) event_forward_extremities_pkey/);
      expect(text).not.toMatch(/Seq Scan on event_forward_extremities/);
      await client.query('DEALLOCATE fe_delete_plan');
    } finally {
      await client.query('RESET plan_cache_mode').catch(() => {});
      client.release();
    }
  });
});
