import { describe, expect, it } from 'vitest';
import { roomShares, roomsSplitEvenly } from '../../../src/bench/room-split.js';
import { roomShardFor } from '../../../src/workers/role.js';

describe('rooms spread evenly over the events writers', () => {
  const writers = ['event_persister1', 'event_persister2'];

  it('gives each writer the same share, the first ones one more', () => {
    expect([...roomShares(5, writers)]).toEqual([['event_persister1', 3], ['event_persister2', 2]]);
    expect([...roomShares(4, ['a', 'b', 'c'])]).toEqual([['a', 2], ['b', 1], ['c', 1]]);
  });

  it('keeps creating rooms until every writer has its share, by roomShardFor', async () => {
    let n = 0;
    const create = async () => `!room${n++}:bench.local`;
    const { rooms, created } = await roomsSplitEvenly(5, writers, create);
    expect(rooms).toHaveLength(5);
    expect(new Set(rooms).size).toBe(5);
    const per = new Map<string, number>();
    for (const r of rooms) per.set(roomShardFor(r, writers), (per.get(roomShardFor(r, writers)) ?? 0) + 1);
    expect(per).toEqual(new Map([['event_persister1', 3], ['event_persister2', 2]]));
    expect(created).toBeGreaterThanOrEqual(5);
  });

  it('gives up with a clear error when the split cannot be reached', async () => {
    // Every room lands on the same writer.
    let n = 0;
    const same: string[] = [];
    while (same.length < 30) {
      const id = `!r${n++}:x`;
      if (roomShardFor(id, writers) === 'event_persister1') same.push(id);
    }
    let i = 0;
    await expect(roomsSplitEvenly(2, writers, async () => same[i++]!, 10)).rejects.toThrow(/could not split 2 rooms/);
  });
});
