import { describe, expect, it } from 'vitest';
import { AuthChains, conflictedSubgraph } from '../../../../src/matrix/state-res-v2.js';
import type { RoomEvent } from '../../../../src/matrix/types.js';
import { rng } from './helpers.js';

/** A random auth DAG (edges to earlier events only); some events cannot be fetched. */
function randomGraph(seed: number, n: number) {
  const rand = rng(seed);
  const events = new Map<string, RoomEvent>();
  const ids = Array.from({ length: n }, (_, i) => `$e${i}`);
  for (let i = 0; i < n; i++) {
    const auth = new Set<string>();
    const k = i === 0 ? 0 : 1 + Math.floor(rand() * 3);
    for (let j = 0; j < k; j++) auth.add(ids[Math.floor(rand() * i)]!);
    // About one in twenty events is missing from the lookup (its chain is cut there).
    if (i > 0 && rand() < 0.05) continue;
    events.set(ids[i]!, { event_id: ids[i]!, room_id: '!r:x', sender: '@a:x', type: 't', content: {}, origin_server_ts: 0, depth: i, prev_events: [], auth_events: [...auth] });
  }
  return { ids, fetch: (id: string) => events.get(id) };
}

/** Reachable through at least one auth_events edge, walked naively. */
function reach(fetch: (id: string) => RoomEvent | undefined, id: string): Set<string> {
  const out = new Set<string>();
  const stack = [...((fetch(id)?.auth_events ?? []) as string[])];
  while (stack.length) {
    const x = stack.pop()!;
    if (out.has(x)) continue;
    out.add(x);
    stack.push(...((fetch(x)?.auth_events ?? []) as string[]));
  }
  return out;
}

describe('AuthChains', () => {
  it('union is the union of the chains, and conflictedSubgraph the events on paths between conflicted events', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { ids, fetch } = randomGraph(seed, 120);
      const rand = rng(seed * 7);
      const chains = new AuthChains(fetch);
      const pick = ids.filter(() => rand() < 0.1);
      const expected = new Set<string>();
      for (const id of pick) {
        const r = reach(fetch, id);
        expect(chains.of(id)).toEqual(r);
        for (const x of r) expected.add(x);
      }
      expect(new AuthChains(fetch).union(pick)).toEqual(expected);

      const conflicted = new Set(pick);
      const below = expected;
      const reachesConflicted = (x: string) => [...reach(fetch, x)].some((c) => conflicted.has(c));
      const want = new Set<string>();
      for (const c of conflicted) if (below.has(c) || reachesConflicted(c)) want.add(c);
      for (const x of below) if (!conflicted.has(x) && reachesConflicted(x)) want.add(x);
      expect(new Set(conflictedSubgraph(conflicted, new AuthChains(fetch)))).toEqual(want);
    }
  });
});
