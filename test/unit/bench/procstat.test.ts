import { describe, expect, it } from 'vitest';
import {
  clockTicksPerSecond,
  parseLoadavg,
  parseSmapsRollup,
  parseStatCpuTicks,
  ProcSampler,
  ticksToMs,
} from '../../../src/bench/procstat.js';

describe('/proc parsing', () => {
  it('reads utime+stime (fields 14, 15) even when comm has spaces and parens', () => {
    const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 11 0 12345 1000000 5000';
    expect(parseStatCpuTicks(stat)).toBe(325);
    expect(() => parseStatCpuTicks('garbage')).toThrow();
  });
  it('reads Rss and Pss from smaps_rollup', () => {
    const text = '55a0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:              102400 kB\nPss:               81920 kB\nPss_Anon:          60000 kB\n';
    expect(parseSmapsRollup(text)).toEqual({ rssKb: 102400, pssKb: 81920 });
  });
  it('reads loadavg', () => {
    expect(parseLoadavg('0.52 0.58 0.59 2/1234 5678\n')).toEqual({ load1: 0.52, load5: 0.58, load15: 0.59 });
  });
  it('converts ticks to ms', () => {
    expect(ticksToMs(325, 100)).toBe(3250);
    expect(clockTicksPerSecond()).toBeGreaterThan(0);
  });
  it('samples this very process: CPU grows with work, memory is seen', async () => {
    const s = new ProcSampler([process.pid], 10);
    s.start();
    // Burn a known amount of this process's own CPU time (not wall time, which
    // a loaded machine stretches), then check the sampler saw it.
    const before = process.cpuUsage();
    let x = 0;
    const used = () => {
      const d = process.cpuUsage(before);
      return (d.user + d.system) / 1000;
    };
    while (used() < 150) for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
    const f = s.stop();
    expect(x).toBeGreaterThan(0);
    expect(f.cpuMs).toBeGreaterThanOrEqual(50);
    expect(f.peakRssMb).toBeGreaterThan(1);
    expect(f.peakPssMb).toBeGreaterThan(0);
    expect(f.unreadable).toEqual([]);
  });
  it('reports PIDs that do not exist', () => {
    const s = new ProcSampler([2 ** 22 + 7]);
    s.start();
    expect(s.stop().unreadable).toEqual([2 ** 22 + 7]);
  });
});
