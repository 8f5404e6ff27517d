import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  childPids,
  clockTicksPerSecond,
  parseLoadavg,
  parseSmapsRollup,
  parseStatCpuTicks,
  parseStatPpid,
  ProcSampler,
  samplingCpuMs,
  ticksToMs,
} from '../../../src/bench/procstat.js';


/** Burns `ms` of this process's own CPU time (not wall time, which a loaded machine stretches); returns the sum computed. */
function burnCpu(ms: number): number {
  const before = process.cpuUsage();
  let x = 0;
  const used = () => {
    const d = process.cpuUsage(before);
    return (d.user + d.system) / 1000;
  };
  while (used() < ms) for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
  return x;
}

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
    const x = burnCpu(150);
    const f = s.stop();
    expect(x).toBeGreaterThan(0);
    expect(f.cpuMs).toBeGreaterThanOrEqual(50);
    expect(f.peakRssMb).toBeGreaterThan(1);
    expect(f.peakPssMb).toBeGreaterThan(0);
    expect(f.unreadable).toEqual([]);
    // One process: its own figures are the sums.
    expect(f.perPid).toHaveLength(1);
    expect(f.perPid[0]!.pid).toBe(process.pid);
    expect(f.perPid[0]!.cpuMs).toBe(f.cpuMs);
    expect(f.perPid[0]!.peakPssMb).toBe(f.peakPssMb);
  });
  it('reads the parent pid (field 4) and finds a process by its parent', async () => {
    expect(parseStatPpid('4242 (a) b) c) S 17 4242 4242 0')).toBe(17);
    expect(() => parseStatPpid('4242 nothing')).toThrow();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      expect(childPids(process.pid)).toContain(child.pid);
      expect(childPids(child.pid!)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });
  it('keeps each process peak apart from the summed peak', () => {
    const gone = 2 ** 22 + 9;
    const s = new ProcSampler([process.pid, gone], 10);
    s.start();
    const f = s.stop();
    const mine = f.perPid.find((x) => x.pid === process.pid)!;
    const other = f.perPid.find((x) => x.pid === gone)!;
    expect(mine.peakPssMb).toBeGreaterThan(0);
    expect(f.peakPssMb).toBeGreaterThanOrEqual(mine.peakPssMb);
    expect(other.peakPssMb).toBeNaN();
    expect(other.cpuMs).toBeNaN();
    expect(f.unreadable).toEqual([gone]);
  });
  it('reports PIDs that do not exist', () => {
    const s = new ProcSampler([2 ** 22 + 7]);
    s.start();
    expect(s.stop().unreadable).toEqual([2 ** 22 + 7]);
  });
  it('adds up what its own sweeps cost, and only that', async () => {
    // Work outside the sweeps (here a synchronous loop, during which no sweep can run) is not charged.
    const s0 = samplingCpuMs();
    const x = burnCpu(100);
    expect(x).toBeGreaterThan(0);
    expect(samplingCpuMs()).toBe(s0);
    // Sweeps are charged: start, the timer's, stop.
    const s = new ProcSampler([process.pid, process.pid, process.pid], 5);
    s.start();
    await new Promise((r) => setTimeout(r, 100));
    s.stop();
    expect(samplingCpuMs()).toBeGreaterThan(s0);
    // A sampler with nothing to read costs nothing.
    const s1 = samplingCpuMs();
    const none = new ProcSampler([], 5);
    none.start();
    await new Promise((r) => setTimeout(r, 30));
    none.stop();
    expect(samplingCpuMs()).toBe(s1);
  });
});
