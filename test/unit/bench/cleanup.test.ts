import { describe, expect, it } from 'vitest';
import { onInterrupt } from '../../../src/bench/cleanup.js';

describe('onInterrupt', () => {
  it('runs a registered cleanup once, however often it is called', async () => {
    let n = 0;
    const stop = onInterrupt(async () => {
      n++;
    });
    await Promise.all([stop(), stop()]);
    await stop();
    expect(n).toBe(1);
  });
  it('passes a failure on to the caller', async () => {
    const stop = onInterrupt(async () => {
      throw new Error('boom');
    });
    await expect(stop()).rejects.toThrow('boom');
  });
});
