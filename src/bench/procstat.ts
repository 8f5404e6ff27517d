/**
 * Sampling server processes through /proc (Linux): CPU time from
 * /proc/<pid>/stat (utime + stime, in clock ticks), memory from
 * /proc/<pid>/smaps_rollup (Rss and Pss, kB), machine load from /proc/loadavg.
 * The parse functions are pure; the sampler does the reading.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** utime + stime (clock ticks) from the text of /proc/<pid>/stat. */
export function parseStatCpuTicks(stat: string): number {
  // Field 2 (comm) is in parentheses and may itself contain spaces or ')';
  // the fields after the LAST ')' start at field 3 (state).
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc/<pid>/stat');
  const rest = stat.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3, so field k is rest[k - 3]: utime = 14, stime = 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('malformed /proc/<pid>/stat');
  return utime + stime;
}

/** The parent PID (field 4) from the text of /proc/<pid>/stat. */
export function parseStatPpid(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc/<pid>/stat');
  const ppid = Number(stat.slice(close + 1).trim().split(/\s+/)[1]);
  if (!Number.isInteger(ppid)) throw new Error('malformed /proc/<pid>/stat');
  return ppid;
}

/** The direct children of a process (e.g. nginx's worker processes), by scanning /proc. */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (parseStatPpid(readFileSync(`/proc/${e}/stat`, 'utf8')) === parent) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out.sort((a, b) => a - b);
}

export interface MemSample {
  rssKb: number;
  pssKb: number;
}

/** Rss and Pss (kB) from the text of /proc/<pid>/smaps_rollup. */
export function parseSmapsRollup(text: string): MemSample {
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { rssKb: field('Rss'), pssKb: field('Pss') };
}

export interface LoadAvg {
  load1: number;
  load5: number;
  load15: number;
}

export function parseLoadavg(text: string): LoadAvg {
  const [a, b, c] = text.trim().split(/\s+/).map(Number);
  return { load1: a ?? NaN, load5: b ?? NaN, load15: c ?? NaN };
}

export function readLoadavg(): LoadAvg {
  try {
    return parseLoadavg(readFileSync('/proc/loadavg', 'utf8'));
  } catch {
    return { load1: NaN, load5: NaN, load15: NaN };
  }
}

let clkTckCache: number | undefined;
/** Clock ticks per second (`getconf CLK_TCK`; 100 on practically every Linux). */
export function clockTicksPerSecond(): number {
  if (clkTckCache === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clkTckCache = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      clkTckCache = 100;
    }
  }
  return clkTckCache;
}

export function ticksToMs(ticks: number, clkTck: number): number {
  return (ticks * 1000) / clkTck;
}

export function readCpuTicks(pid: number): number | undefined {
  try {
    return parseStatCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function readMem(pid: number): MemSample | undefined {
  try {
    return parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * CPU ms this process spent reading other processes' /proc (every sampler's
 * sweeps added up), so that the load generator's own CPU figure can leave it
 * out: reading smaps_rollup walks the page tables of the process read (kernel
 * time, about 1 ms per 100 MiB), a cost that grows with the number and size of
 * the processes sampled (seven Node processes and nginx in a worker shape
 * against one in the monolith), not with the requests the generator makes.
 */
let samplingCpuUs = 0;

export function samplingCpuMs(): number {
  return samplingCpuUs / 1000;
}

/** Runs `f`, adding the process CPU time it took to samplingCpuMs(). */
function charged<T>(f: () => T): T {
  const c0 = process.cpuUsage();
  try {
    return f();
  } finally {
    const c = process.cpuUsage(c0);
    samplingCpuUs += c.user + c.system;
  }
}

export interface ProcFigures {
  /** CPU time (user + system) the sampled processes used, summed. */
  cpuMs: number;
  /** Peak of the summed RSS / PSS of the processes (MiB). */
  peakRssMb: number;
  peakPssMb: number;
  /** PIDs that could not be read at some point (gone, or no permission). */
  unreadable: number[];
  /** Per process: its own CPU time and peak RSS / PSS (NaN when never readable). */
  perPid: PidFigures[];
}

export interface PidFigures {
  pid: number;
  cpuMs: number;
  peakRssMb: number;
  peakPssMb: number;
}

/** Samples a set of PIDs between start() and stop(). */
export class ProcSampler {
  private startTicks = new Map<number, number>();
  private peakRssKb = NaN;
  private peakPssKb = NaN;
  private timer: NodeJS.Timeout | undefined;
  private readonly unreadable = new Set<number>();
  private readonly peaksKb = new Map<number, MemSample>();

  constructor(
    private readonly pids: readonly number[],
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.startTicks.clear();
    this.peaksKb.clear();
    for (const pid of this.pids) {
      const t = readCpuTicks(pid);
      if (t === undefined) this.unreadable.add(pid);
      else this.startTicks.set(pid, t);
    }
    this.sampleMemory();
    this.timer = setInterval(() => this.sampleMemory(), this.intervalMs);
    this.timer.unref();
  }

  private sampleMemory(): void {
    if (this.pids.length === 0) return;
    charged(() => this.sweep());
  }

  private sweep(): void {
    let rss = 0;
    let pss = 0;
    let any = false;
    for (const pid of this.pids) {
      const m = readMem(pid);
      if (!m || !Number.isFinite(m.rssKb)) {
        this.unreadable.add(pid);
        continue;
      }
      any = true;
      const p = Number.isFinite(m.pssKb) ? m.pssKb : m.rssKb;
      rss += m.rssKb;
      pss += p;
      const peak = this.peaksKb.get(pid);
      this.peaksKb.set(pid, peak ? { rssKb: Math.max(peak.rssKb, m.rssKb), pssKb: Math.max(peak.pssKb, p) } : { rssKb: m.rssKb, pssKb: p });
    }
    if (!any) return;
    this.peakRssKb = Number.isFinite(this.peakRssKb) ? Math.max(this.peakRssKb, rss) : rss;
    this.peakPssKb = Number.isFinite(this.peakPssKb) ? Math.max(this.peakPssKb, pss) : pss;
  }

  stop(): ProcFigures {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sampleMemory();
    let ticks = 0;
    const clk = clockTicksPerSecond();
    const cpuByPid = new Map<number, number>();
    for (const [pid, before] of this.startTicks) {
      const after = readCpuTicks(pid);
      if (after === undefined) this.unreadable.add(pid);
      else {
        ticks += after - before;
        cpuByPid.set(pid, ticksToMs(after - before, clk));
      }
    }
    const perPid = this.pids.map((pid) => {
      const peak = this.peaksKb.get(pid);
      return { pid, cpuMs: cpuByPid.get(pid) ?? NaN, peakRssMb: peak ? peak.rssKb / 1024 : NaN, peakPssMb: peak ? peak.pssKb / 1024 : NaN };
    });
    return {
      perPid,
      cpuMs: this.pids.length && this.startTicks.size ? ticksToMs(ticks, clk) : NaN,
      peakRssMb: this.peakRssKb / 1024,
      peakPssMb: this.peakPssKb / 1024,
      unreadable: [...this.unreadable],
    };
  }
}
