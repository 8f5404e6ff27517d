import { describe, expect, it } from 'vitest';
import { Ratelimiter } from '../../../src/services/ratelimit.js';
import { MatrixError } from '../../../src/util/errors.js';

describe('token-bucket rate limiter', () => {
  it('allows burst_count actions, then refuses with the time until the next one fits', () => {
    let now = 1_000_000;
    const rl = new Ratelimiter({ per_second: 0.5, burst_count: 3 }, () => now);
    for (let i = 0; i < 3; i++) expect(rl.check('k').allowed).toBe(true);
    const refused = rl.check('k');
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBe(2000);
    now += 1000;
    expect(rl.check('k')).toEqual({ allowed: false, retryAfterMs: 1000 });
    now += 1000;
    expect(rl.check('k').allowed).toBe(true);
    expect(rl.check('k').allowed).toBe(false);
  });

  it('keeps keys apart', () => {
    const rl = new Ratelimiter({ per_second: 0.1, burst_count: 1 }, () => 0);
    expect(rl.check('a').allowed).toBe(true);
    expect(rl.check('a').allowed).toBe(false);
    expect(rl.check('b').allowed).toBe(true);
  });

  it('take() throws M_LIMIT_EXCEEDED 429 with retry_after_ms; assertCanDo does not count', () => {
    let now = 0;
    const rl = new Ratelimiter({ per_second: 1, burst_count: 2 }, () => now);
    rl.assertCanDo('x');
    rl.assertCanDo('x');
    rl.assertCanDo('x');
    rl.take('x');
    rl.record('x');
    try {
      rl.take('x');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MatrixError);
      const err = e as MatrixError;
      expect(err.status).toBe(429);
      expect(err.toJSON()).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 1000 });
      expect(err.headers['Retry-After']).toBe('1');
    }
    expect(() => rl.assertCanDo('x')).toThrow(MatrixError);
    now += 1000;
    expect(() => rl.take('x')).not.toThrow();
  });

  it('refills no further than the burst', () => {
    let now = 0;
    const rl = new Ratelimiter({ per_second: 10, burst_count: 2 }, () => now);
    now += 1_000_000;
    expect(rl.check('k').allowed).toBe(true);
    expect(rl.check('k').allowed).toBe(true);
    expect(rl.check('k').allowed).toBe(false);
  });
});
