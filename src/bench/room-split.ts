/**
 * Rooms spread evenly over the events writers (the worker shapes'
 * persisters). Room ids are random, so of five rooms one persister may get
 * four, or all five, and a run's CPU and latency then depend on the split
 * more than on the build. With the writers known, the bench creates rooms
 * until each writer has its share (`rooms / writers`, the first ones one
 * more) and uses those; the others stay empty.
 */
import { roomShardFor } from '../workers/role.js';

/** How many of `rooms` each writer gets: the same, the first `rooms % n` one more. */
export function roomShares(rooms: number, writers: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  writers.forEach((w, i) => out.set(w, Math.floor(rooms / writers.length) + (i < rooms % writers.length ? 1 : 0)));
  return out;
}

/**
 * Picks `rooms` room ids from those `create` makes, each writer getting its
 * share (roomShares). Stops with an error after `maxCreated` rooms without
 * the split (a target that does not shard by roomShardFor).
 */
export async function roomsSplitEvenly(
  rooms: number,
  writers: readonly string[],
  create: () => Promise<string>,
  maxCreated = Math.max(20, rooms * 10),
): Promise<{ rooms: string[]; created: number }> {
  const wanted = roomShares(rooms, writers);
  const picked: string[] = [];
  let created = 0;
  while (picked.length < rooms) {
    if (created >= maxCreated) throw new Error(`could not split ${rooms} rooms over ${writers.join(', ')} in ${maxCreated} rooms created`);
    const id = await create();
    created++;
    const w = roomShardFor(id, writers);
    const left = wanted.get(w) ?? 0;
    if (left > 0) {
      wanted.set(w, left - 1);
      picked.push(id);
    }
  }
  return { rooms: picked, created };
}
