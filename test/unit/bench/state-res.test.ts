import { describe, expect, it } from 'vitest';
import { buildFixture, checkResult, measureHere } from '../../../src/bench/state-res.js';
import { resolveState } from '../../../src/matrix/state-res.js';

describe('state-res bench fixture', () => {
  it.each(['10', '12', '1'])('room version %s: two forks of 1,000 resolve to the checked result', (v) => {
    const fx = buildFixture(v);
    expect(fx.sets.map((s) => s.size)).toEqual([1005, 995]);
    const res = resolveState(fx.rv, fx.sets, fx.fetch);
    expect(checkResult(fx, res)).toEqual([]);
    expect(res.size).toBe(1255);
  });

  it('a wrong result is reported', () => {
    const fx = buildFixture('10');
    const res = resolveState(fx.rv, fx.sets, fx.fetch);
    const [k2, b2] = [...fx.b].find(([k]) => k.endsWith('\u0000k2'))!;
    expect(res.get(k2)).toBe(b2); // fork B's custom state wins in v2
    const wrong = new Map(res);
    wrong.set(k2, fx.a.get(k2)!);
    expect(checkResult(fx, wrong)).toEqual([expect.stringContaining('m.custom|k2')]);
    const missing = new Map(res);
    missing.delete(k2);
    expect(checkResult(fx, missing).join(' ')).toContain('1254 keys instead of 1255');
  });

  it('measureHere times the first and later resolutions', () => {
    const f = measureHere('10', 1);
    expect(f.problems).toEqual([]);
    expect(f.keys).toBe(1255);
    expect(f.cold_ms).toBeGreaterThan(0);
    expect(f.cold_cpu_ms).toBeGreaterThanOrEqual(0);
    expect(f.warm_ms).toBeGreaterThan(0);
  });
});
