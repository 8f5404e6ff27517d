/**
 * State group ids when several event persisters write (worker mode): each
 * persister takes only the ids congruent to its index in
 * `stream_writers.events` modulo the number of persisters, so that two
 * persisters never pick the same id without any coordination. With one
 * events writer the plain counter is used.
 */
import type { HomeserverConfig } from '../config/schema.js';
import { streamWriters } from './role.js';

export function stateGroupAllocator(
  s: { config: Pick<HomeserverConfig, 'stream_writers'>; instanceName: string },
  plain: () => number,
  set: (n: number) => void,
): () => number {
  const writers = streamWriters(s.config).events;
  const index = writers.indexOf(s.instanceName);
  if (writers.length < 2 || index < 0) return plain;
  const n = writers.length;
  return () => {
    // The next id above the counter that belongs to this persister.
    let id = plain();
    while (id % n !== index) id++;
    set(id);
    return id;
  };
}
