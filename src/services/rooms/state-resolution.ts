/**
 * Resolving the state of several forks (forward extremities with different
 * state groups) with the room version's algorithm. state-res needs every
 * event of the state sets and of their auth chains in memory: they are
 * loaded breadth-first, one batch query per level of the auth graph.
 */
import { resolveState } from '../../matrix/state-res.js';
import type { RoomVersion } from '../../matrix/room-versions.js';
import { authEventIds, type RoomEvent, type StateIds } from '../../matrix/types.js';
import type { RoomStore } from '../../storage/rooms/store.js';

export async function resolveForks(store: RoomStore, rv: RoomVersion, groups: number[]): Promise<StateIds> {
  const sets = await Promise.all(groups.map((g) => store.getStateIdsForGroup(g)));
  const events = new Map<string, RoomEvent>();
  const rejected = new Set<string>();
  const seen = new Set<string>();
  let frontier = new Set<string>();
  for (const s of sets) for (const id of s.values()) frontier.add(id);
  while (frontier.size) {
    for (const id of frontier) seen.add(id);
    const got = await store.getEvents([...frontier]);
    const next = new Set<string>();
    for (const [id, se] of got) {
      events.set(id, se.event);
      if (se.rejectedReason) rejected.add(id);
      for (const a of authEventIds(se.event)) if (!seen.has(a)) next.add(a);
    }
    frontier = next;
  }
  return resolveState(rv, sets, (id) => events.get(id), { isRejected: (id) => rejected.has(id) });
}
