import { describe, expect, it } from 'vitest';
import { resolveState } from '../../../../src/matrix/state-res.js';
import { ALICE, BOB, newRoom, rv } from '../auth/room-builder.js';
import { idAt } from './helpers.js';

/** Sanity check, not a benchmark: prints the time, asserts only the result. */
describe('state resolution performance sanity', () => {
  it('resolves two forks of 1,000 state events each', () => {
    const room = newRoom('10').standard('public', { [BOB]: 50 });
    room.join(BOB);
    const a = room.fork();
    const b = room.fork();
    for (let i = 0; i < 1000; i++) {
      a.add({ type: 'm.custom', sender: ALICE, state_key: `k${i}`, content: { v: `a${i}` } });
      if (i % 4 === 0) b.join(`@u${i}:b.example`);
      else if (i % 100 === 1) b.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 50, [`@u${i - 1}:b.example`]: 10 } });
      else b.add({ type: 'm.custom', sender: BOB, state_key: `k${i}`, content: { v: `b${i}` } });
    }
    const sets = [a.stateIds(), b.stateIds()];
    const t0 = performance.now();
    const res = resolveState(rv('10'), sets, room.store.fetch);
    const ms = performance.now() - t0;
    console.log(`state-res v2: two forks of 1000 state events resolved in ${ms.toFixed(1)} ms (${res.size} keys)`);
    expect(idAt(res, 'm.room.member', '@u996:b.example')).toBeDefined();
    expect(idAt(res, 'm.custom', 'k0')).toBeDefined();
    expect(res.size).toBeGreaterThan(1000);

    const t1 = performance.now();
    const res1 = resolveState(rv('1'), sets, room.store.fetch);
    console.log(`state-res v1: same forks resolved in ${(performance.now() - t1).toFixed(1)} ms (${res1.size} keys)`);
    expect(res1.size).toBeGreaterThan(1000);
  });
});
