import { describe, expect, it, vi } from 'vitest';
import { ReplicationRegistry } from '../../../src/workers/replication-registry.js';
import { replicationSecretMatches } from '../../../src/api/replication/index.js';
import { MatrixError } from '../../../src/util/errors.js';

describe('ReplicationRegistry', () => {
  it('answers a retried transaction from the cache, running the write once', async () => {
    const reg = new ReplicationRegistry();
    let writes = 0;
    reg.register('send', async (body) => ({ n: ++writes, echo: body.x }));
    const [a, b] = await Promise.all([reg.call('send', { x: 1 }, 't1'), reg.call('send', { x: 1 }, 't1')]);
    expect(a).toEqual({ n: 1, echo: 1 });
    expect(b).toEqual(a);
    expect(await reg.call('send', { x: 1 }, 't1')).toEqual(a);
    expect(await reg.call('send', { x: 2 }, 't2')).toEqual({ n: 2, echo: 2 });
    expect(writes).toBe(2);
  });

  it('caches Matrix errors but not unexpected failures', async () => {
    const reg = new ReplicationRegistry();
    let calls = 0;
    reg.register('forbid', () => {
      calls++;
      throw new MatrixError(403, 'M_FORBIDDEN', 'no');
    });
    await expect(reg.call('forbid', {}, 'a')).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    await expect(reg.call('forbid', {}, 'a')).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    expect(calls).toBe(1);
    let flaky = 0;
    reg.register('flaky', () => {
      if (++flaky === 1) throw new Error('db blip');
      return { ok: true };
    });
    await expect(reg.call('flaky', {}, 'b')).rejects.toThrow('db blip');
    expect(await reg.call('flaky', {}, 'b')).toEqual({ ok: true });
  });

  it('expires cached answers and refuses unknown or duplicate names', async () => {
    const reg = new ReplicationRegistry(0);
    let n = 0;
    reg.register('count', () => ++n);
    await reg.call('count', {}, 't');
    await reg.call('count', {}, 't');
    expect(n).toBe(2);
    expect(() => reg.register('count', () => 0)).toThrow(/twice/);
    expect(() => reg.register('bad name', () => 0)).toThrow();
    await expect(reg.call('missing', {}, 't')).rejects.toMatchObject({ status: 404, errcode: 'M_UNRECOGNIZED' });
  });

  it('keeps at most maxEntries answers: a full cache forgets its oldest, the recent ones still answer retries', async () => {
    const reg = new ReplicationRegistry(60_000, 3);
    let n = 0;
    reg.register('count', () => ++n);
    for (const t of ['a', 'b', 'c', 'd']) await reg.call('count', {}, t);
    expect(n).toBe(4);
    // b, c, d are cached: their retries do not run the write again.
    for (const t of ['b', 'c', 'd']) await reg.call('count', {}, t);
    expect(n).toBe(4);
    // a was dropped when d came in.
    expect(await reg.call('count', {}, 'a')).toBe(5);
  });

  it('a txn id written again after its answer expired is the newest entry, not evicted before older live ones', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const reg = new ReplicationRegistry(1_000, 3);
      let n = 0;
      reg.register('count', () => ++n);
      await reg.call('count', {}, 'a'); // t=0, expires 1000
      vi.setSystemTime(500);
      await reg.call('count', {}, 'b'); // expires 1500
      vi.setSystemTime(1_200);
      await reg.call('count', {}, 'a'); // a expired: written again (n=3), expires 2200
      await reg.call('count', {}, 'c'); // expires 2200
      vi.setSystemTime(1_600);
      await reg.call('count', {}, 'd'); // full: b (expired) goes, a and c stay
      expect(n).toBe(5);
      await reg.call('count', {}, 'a'); // still cached: not written again
      expect(n).toBe(5);
    } finally {
      vi.useRealTimers();
    }
  });

  it('non-idempotent endpoints run every time', async () => {
    const reg = new ReplicationRegistry();
    let n = 0;
    reg.register('read', () => ++n, { idempotent: false });
    await reg.call('read', {}, 't');
    await reg.call('read', {}, 't');
    expect(n).toBe(2);
  });
});

describe('replication secret', () => {
  it('compares the Bearer secret', () => {
    expect(replicationSecretMatches('Bearer s3cret', 's3cret')).toBe(true);
    expect(replicationSecretMatches('bearer s3cret', 's3cret')).toBe(true);
    expect(replicationSecretMatches('Bearer s3cre', 's3cret')).toBe(false);
    expect(replicationSecretMatches('s3cret', 's3cret')).toBe(false);
    expect(replicationSecretMatches(undefined, 's3cret')).toBe(false);
    expect(replicationSecretMatches('Bearer ', '')).toBe(false);
  });
});
