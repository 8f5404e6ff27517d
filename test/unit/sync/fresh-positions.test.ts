import { describe, expect, it } from 'vitest';
import { needsFreshPositions } from '../../../src/services/sync/sync-service.js';

describe('needsFreshPositions (worker mode: read every writer position before a /sync)', () => {
  const never = () => {
    throw new Error('the token need not be looked at');
  };
  const req = (since: string | undefined, timeoutMs: number, fullState = false) => ({ since, timeoutMs, fullState });

  it('reads them for an initial sync, timeout=0 and full_state, without looking at the token', () => {
    expect(needsFreshPositions(req(undefined, 30_000), never)).toBe(true);
    expect(needsFreshPositions(req('s1_5_0_0_0_0_0_0_0_0', 0), never)).toBe(true);
    expect(needsFreshPositions(req('s1_5_0_0_0_0_0_0_0_0', 30_000, true), never)).toBe(true);
  });

  it('reads them for a long-poll whose token is ahead of this process', () => {
    expect(needsFreshPositions(req('s1_m5~p1.9_0_0_0_0_0_0_0_0', 30_000), () => true)).toBe(true);
  });

  it('skips them for a long-poll from a token this process has reached', () => {
    expect(needsFreshPositions(req('s1_5_0_0_0_0_0_0_0_0', 30_000), () => false)).toBe(false);
  });
});
