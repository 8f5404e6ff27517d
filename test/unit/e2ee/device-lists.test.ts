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

  /** Records a membership event (room_memberships), the current membership, and tells the tracker as the rooms listener does. */
  async function member(roomId: string, userId: string, membership: string): Promise<number> {
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
});
