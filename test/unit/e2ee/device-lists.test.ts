/** Device-list tracking over the real schema on both engines: changed/left from key changes and memberships. */
import { beforeEach, expect, it } from 'vitest';
import { DeviceListTracker } from '../../../src/services/e2ee/device-lists.js';
import { SqlKeysStore } from '../../../src/storage/e2ee/keys-store.js';
import { SqlSharingStore } from '../../../src/storage/e2ee/sharing-store.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import type { StreamChange } from '../../../src/streams/notifier-types.js';
import { describeEngines } from '../../storage/engines.js';

describeEngines('e2ee device lists', (db) => {
  let tracker: DeviceListTracker;
  let notes: StreamChange[];
  let ev = 0;
  let room = 0;

  beforeEach(async () => {
    notes = [];
    const positions = await StreamIdGenerator.fromTables(db(), [{ table: 'device_lists_stream', column: 'stream_id' }]);
    tracker = new DeviceListTracker(db(), new SqlKeysStore(db()), new SqlSharingStore(db()), positions, () => ({ notify: (c) => notes.push(c) }));
    const r = await db().queryOne<{ m: number | null }>('SELECT MAX(stream_ordering) AS m FROM room_memberships');
    ev = Number(r?.m ?? 0);
  });

  /** Records a membership event (room_memberships) and the current membership; its stream ordering. */
  async function persistMembership(roomId: string, userId: string, membership: string): Promise<number> {
    const so = ++ev;
    await db().execute(
      'INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, stream_ordering) VALUES (?, ?, ?, ?, ?, ?)',
      [`$e${so}_${roomId}`, roomId, userId, userId, membership, so],
    );
    await db().execute(
      `INSERT INTO current_membership (room_id, user_id, membership, event_id, stream_ordering) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership, event_id = excluded.event_id, stream_ordering = excluded.stream_ordering`,
      [roomId, userId, membership, `$e${so}_${roomId}`, so],
    );
    return so;
  }

  /** persistMembership, then tells the tracker as the rooms listener does. */
  async function member(roomId: string, userId: string, membership: string): Promise<number> {
    const so = await persistMembership(roomId, userId, membership);
    await tracker.recordMembershipChanges([{ roomId, userId, membership, streamOrdering: so }]);
    return so;
  }
  const newRoom = () => `!r${++room}:t`;

  it('reports room-mates and self whose keys changed, and notifies room-mates', async () => {
    const [a, b, c] = ['@a1:t', '@b1:t', '@c1:t'];
    const r = newRoom();
    await member(r, a, 'join');
    await member(r, b, 'join');
    const from = tracker.getCurrentPosition();
    notes = [];
    await tracker.markChanged([b]);
    await tracker.markChanged([c]); // shares no room with a
    await tracker.markChanged([a]);
    const to = tracker.getCurrentPosition();
    expect(await tracker.getChanges(a, from, to)).toEqual({ changed: [a, b].sort(), left: [] });
    expect(notes.find((n) => n.stream === 'device_lists' && n.users?.includes(b) && n.users?.includes(a))).toBeTruthy();
    expect(notes.every((n) => n.position > from && n.position <= to)).toBe(true);
    // An empty range reports nothing.
    expect(await tracker.getChanges(a, to, to)).toEqual({ changed: [], left: [] });
  });

  it('reports users who came to share a room in changed and those who stopped in left', async () => {
    const [a, b, c, d] = ['@a2:t', '@b2:t', '@c2:t', '@d2:t'];
    const r1 = newRoom();
    const r2 = newRoom();
    await member(r1, a, 'join');
    await member(r1, b, 'join');
    await member(r2, c, 'join');
    await member(r1, d, 'join');
    await member(r2, d, 'join');
    const dl = tracker.getCurrentPosition();
    await member(r2, a, 'join'); // a now shares r2 with c (new) and d
    await member(r1, b, 'leave'); // b shares nothing with a any more
    const dl2 = tracker.getCurrentPosition();
    const changes = await tracker.getChanges(a, dl, dl2);
    expect(changes.changed).toEqual([c, d].sort());
    expect(changes.left).toEqual([b]);
    // The room-mates were woken.
    expect(notes.some((n) => n.users?.includes(c) && n.position > dl)).toBe(true);
    // d still shares r2 after leaving r1: not in left.
    await member(r1, d, 'leave');
    const dl3 = tracker.getCurrentPosition();
    expect(await tracker.getChanges(a, dl2, dl3)).toEqual({ changed: [], left: [] });
    // A profile change (join -> join) is not a membership change.
    await member(r2, c, 'join');
    const dl4 = tracker.getCurrentPosition();
    expect(dl4).toBe(dl3);
    // a leaves r2: c and d no longer share a room with a.
    await member(r2, a, 'leave');
    expect(await tracker.getChanges(a, dl4, tracker.getCurrentPosition())).toEqual({ changed: [], left: [c, d].sort() });
  });

  it('writes concurrent membership calls in one transaction, with the rows and wake-ups of sequential calls', async () => {
    // Each call: [room index, user, membership][]; the same script runs sequentially and concurrently in fresh rooms.
    const script: Array<Array<[number, string, string]>> = [
      [[0, '@a5:t', 'join']],
      [[0, '@b5:t', 'join'], [1, '@b5:t', 'join']],
      [[0, '@b5:t', 'join']], // profile change: no row, no position
      [[1, '@c5:t', 'invite'], [1, '@c5:t', 'join'], [1, '@c5:t', 'leave']], // one position: the last change wins
      [[0, '@a5:t', 'leave']],
      [[0, '@a5:t', 'join']],
    ];
    let transactions = 0;
    const counting = new Proxy(db(), {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if ((prop === 'transaction' || prop === 'writeOnlyTransaction') && typeof v === 'function') {
          return (...args: unknown[]) => {
            transactions++;
            return v.apply(target, args);
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const positions = await StreamIdGenerator.fromTables(db(), [{ table: 'device_lists_room_changes', column: 'stream_id' }]);
    const t = new DeviceListTracker(counting, new SqlKeysStore(db()), new SqlSharingStore(db()), positions, () => ({ notify: (c) => notes.push(c) }));

    async function calls(rooms: string[]) {
      const out = [];
      for (const call of script) {
        const changes = [];
        for (const [ri, userId, membership] of call) changes.push({ roomId: rooms[ri], userId, membership, streamOrdering: await persistMembership(rooms[ri], userId, membership) });
        out.push(changes);
      }
      return out;
    }
    async function rows(rooms: string[], from: number) {
      const rs = await db().query<{ stream_id: number; room_id: string; user_id: string; membership: string }>(
        `SELECT stream_id, room_id, user_id, membership FROM device_lists_room_changes WHERE room_id IN (?, ?) ORDER BY stream_id, room_id, user_id`,
        rooms,
      );
      return rs.map((r) => [Number(r.stream_id) - from, rooms.indexOf(r.room_id), r.user_id, r.membership]);
    }

    // Sequential: one transaction per call that records something.
    const seqRooms = [newRoom(), newRoom()];
    const seqCalls = await calls(seqRooms);
    const seqFrom = positions.getCurrent();
    notes = [];
    transactions = 0;
    for (const c of seqCalls) await t.recordMembershipChanges(c);
    const seqTransactions = transactions;
    const seqNotes = notes;
    const seqRows = await rows(seqRooms, seqFrom);

    // Concurrent: one transaction, one notification.
    const conRooms = [newRoom(), newRoom()];
    const conCalls = await calls(conRooms);
    const conFrom = positions.getCurrent();
    notes = [];
    transactions = 0;
    await Promise.all(conCalls.map((c) => t.recordMembershipChanges(c)));
    expect(transactions).toBe(1);
    expect(seqTransactions).toBe(5);
    expect(await rows(conRooms, conFrom)).toEqual(seqRows);
    expect(seqRows.map((r) => r[0])).toEqual([1, 2, 2, 3, 4, 5]);
    expect(seqRows.find((r) => r[2] === '@c5:t')).toEqual([3, 1, '@c5:t', 'leave']);
    expect(notes).toHaveLength(1);
    expect(notes[0].position).toBe(conFrom + 5);
    expect(positions.getCurrent()).toBe(conFrom + 5);
    const seqUsers = new Set(seqNotes.flatMap((n) => n.users ?? []));
    expect(new Set(notes[0].users)).toEqual(seqUsers);
    expect(seqUsers).toEqual(new Set(['@a5:t', '@b5:t', '@c5:t']));
  });
  it("a call that fails in a batch fails alone: the others' rows are written and their members woken", async () => {
    const sharing = new SqlSharingStore(db());
    const failing = Object.create(sharing) as SqlSharingStore;
    failing.addMembershipChanges = (tx, rows) =>
      rows.some((r) => r.userId === '@bad6:t') ? Promise.reject(new Error('refused')) : sharing.addMembershipChanges(tx, rows);
    const positions = await StreamIdGenerator.fromTables(db(), [{ table: 'device_lists_room_changes', column: 'stream_id' }]);
    const t = new DeviceListTracker(db(), new SqlKeysStore(db()), failing, positions, () => ({ notify: (c) => notes.push(c) }));
    const roomId = newRoom();
    // Only the membership event: the failing user never becomes a current member (nobody wakes it).
    const change = async (userId: string) => {
      const so = ++ev;
      await db().execute(
        'INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership, stream_ordering) VALUES (?, ?, ?, ?, ?, ?)',
        [`$e${so}_${roomId}`, roomId, userId, userId, 'join', so],
      );
      return [{ roomId, userId, membership: 'join', streamOrdering: so }];
    };
    const calls = [await change('@ok6a:t'), await change('@bad6:t'), await change('@ok6b:t')];
    notes = [];
    const settled = await Promise.allSettled(calls.map((c) => t.recordMembershipChanges(c)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows = await db().query<{ user_id: string }>('SELECT user_id FROM device_lists_room_changes WHERE room_id = ? ORDER BY user_id', [roomId]);
    expect(rows.map((r) => r.user_id)).toEqual(['@ok6a:t', '@ok6b:t']);
    expect(new Set(notes.flatMap((n) => n.users ?? []))).toEqual(new Set(['@ok6a:t', '@ok6b:t']));
  });
});
