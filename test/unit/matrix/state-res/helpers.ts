import type { StateIds } from '../../../../src/matrix/types.js';
import { stateKey } from '../../../../src/matrix/types.js';
import type { RoomBuilder } from '../auth/room-builder.js';

/** Deterministic PRNG (mulberry32) for shuffles. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(xs: readonly T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Shuffles the order of the state sets and the insertion order of each map. */
export function shuffledSets(sets: readonly StateIds[], rand: () => number): StateIds[] {
  return shuffle(sets, rand).map((s) => new Map(shuffle([...s], rand)));
}

/** A state map as a sorted plain object for comparisons. */
export function asObject(s: StateIds): Record<string, string> {
  return Object.fromEntries([...s].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k.replace('\u0000', '|'), v]));
}

export function idAt(s: StateIds, type: string, sk = ''): string | undefined {
  return s.get(stateKey(type, sk));
}

export function contentAt(room: RoomBuilder, s: StateIds, type: string, sk = ''): Record<string, any> | undefined {
  const id = idAt(s, type, sk);
  return id ? room.store.events.get(id)?.content : undefined;
}
