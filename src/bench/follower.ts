/**
 * `npm run build && node dist/bench/follower.js [options]`: what following
 * replication costs a worker that serves nothing.
 *
 * Starts the worker deployment of `bench:shapes` (worker-shape.ts) with one
 * extra generic worker, `follower1`, that nginx never sends a request to and
 * so only follows the streams: RDATA/POSITION from Redis, the periodic
 * catch-up, its caches and notifier. A process that does not write events
 * follows their rows only while a long-poll waits there
 * (stream-replication.ts), so the bench holds one /sync long-poll open on
 * the follower's own client listener throughout, for a user in no room (it
 * is never answered early): the follower hears every event, as a sync
 * worker does. Then, with its CPU time sampled from /proc:
 *
 *   1. warm-up (not measured): messages at --rate events/s for --warmup
 *      seconds: at 40 events a second the follower's code would otherwise
 *      run in V8's interpreter and baseline tiers for most of the load
 *      phase (a steady-state cost is wanted, not the JIT's warm-up);
 *   2. idle: nothing happens for --idle seconds (timers, Redis pings);
 *   3. load: messages are sent through nginx at --rate events/s (open loop,
 *      round robin over --rooms rooms, so both event persisters write) for
 *      --duration seconds.
 *
 * Reports the follower's CPU as a percentage of one core in each phase, and
 * the CPU per followed event. The target (docs/benchmarks.md) is under 2 % of
 * a core at 40 events/s.
 */
import { writeFileSync } from 'node:fs';
import { HttpClient, MatrixApi, type Session } from './client.js';
import { ProcSampler, readLoadavg } from './procstat.js';
import { ShapeSkip, startWorkerDeployment } from './worker-shape.js';
import { runIfMain, sleep } from './util.js';

export interface FollowerOptions {
  persisters: number;
  rate: number;
  durationS: number;
  idleS: number;
  warmupS: number;
  rooms: number;
  jsonFile?: string;
}

export const FOLLOWER_DEFAULTS: FollowerOptions = { persisters: 2, rate: 40, durationS: 20, idleS: 10, warmupS: 30, rooms: 4 };

export const FOLLOWER_USAGE = `Usage: npm run build && node dist/bench/follower.js [options]

  --persisters N   event persisters of the deployment (default ${FOLLOWER_DEFAULTS.persisters})
  --rate R         events per second sent during the load phase (default ${FOLLOWER_DEFAULTS.rate})
  --duration S     seconds of the load phase (default ${FOLLOWER_DEFAULTS.durationS})
  --idle S         seconds of the idle phase before it (default ${FOLLOWER_DEFAULTS.idleS})
  --warmup S       seconds of load before both, not measured (default ${FOLLOWER_DEFAULTS.warmupS})
  --rooms M        rooms the events go to, round robin (default ${FOLLOWER_DEFAULTS.rooms})
  --json FILE      also write the figures as JSON

Needs PostgreSQL (MYELIN_BENCH_PG, as bench:shapes), Redis (MYELIN_BENCH_REDIS)
and nginx; run "npm run build" first.`;

export function parseFollowerArgs(argv: readonly string[]): FollowerOptions | 'help' {
  const o: FollowerOptions = { ...FOLLOWER_DEFAULTS };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--persisters':
        o.persisters = Math.floor(num(flag, value(), 1));
        break;
      case '--rate':
        o.rate = num(flag, value(), 0.1);
        break;
      case '--duration':
        o.durationS = num(flag, value(), 1);
        break;
      case '--idle':
        o.idleS = num(flag, value(), 0);
        break;
      case '--warmup':
        o.warmupS = num(flag, value(), 0);
        break;
      case '--rooms':
        o.rooms = Math.floor(num(flag, value(), 1));
        break;
      case '--json': {
        const v = value();
        if (!v) throw new Error('--json needs a file');
        o.jsonFile = v;
        break;
      }
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  return o;
}

export interface PhaseFigures {
  wall_ms: number;
  follower_cpu_ms: number;
  /** The follower's CPU time as a percentage of one core. */
  follower_cpu_percent: number;
  events: number;
  /** CPU time of every other Myelin process, summed (context). */
  others_cpu_ms: number;
  load1_start: number;
  load1_end: number;
}

export interface FollowerReport {
  options: FollowerOptions;
  idle: PhaseFigures;
  load: PhaseFigures & { send_failures: number };
  /** (load CPU - idle CPU rate x load wall) / events: what one followed event costs. */
  follower_cpu_ms_per_event: number;
  /** Long-polls of the idle user the follower answered (each after its 30 s timeout, or when it ended). */
  long_polls_answered: number;
}

/**
 * Keeps one /sync long-poll (30 s) waiting on `api` for `user` until
 * stopped: the first sync has no timeout, then each one starts from the
 * last `next_batch`.
 */
export function holdLongPoll(api: MatrixApi, user: Session): { stop(): Promise<void>; answered(): number } {
  const ac = new AbortController();
  let answered = 0;
  const loop = (async () => {
    let since: string | undefined;
    while (!ac.signal.aborted) {
      try {
        const r = await api.sync(user, { since, timeout: since === undefined ? 0 : 30_000 }, ac.signal);
        if (since !== undefined) answered++;
        since = r.json?.next_batch ?? since;
      } catch {
        if (!ac.signal.aborted) await sleep(500);
      }
    }
  })();
  return {
    stop: async () => {
      ac.abort();
      await loop;
    },
    answered: () => answered,
  };
}

async function phase(pids: { follower: number; others: number[] }, run: () => Promise<number>): Promise<PhaseFigures> {
  const follower = new ProcSampler([pids.follower], 1000);
  const others = new ProcSampler(pids.others, 1000);
  const load1Start = readLoadavg().load1;
  const t0 = performance.now();
  follower.start();
  others.start();
  const events = await run();
  const f = follower.stop();
  const o = others.stop();
  const wall = performance.now() - t0;
  return {
    wall_ms: Math.round(wall),
    follower_cpu_ms: f.cpuMs,
    follower_cpu_percent: Number(((100 * f.cpuMs) / wall).toFixed(2)),
    events,
    others_cpu_ms: o.cpuMs,
    load1_start: load1Start,
    load1_end: readLoadavg().load1,
  };
}

export async function runFollowerBench(o: FollowerOptions, log: (s: string) => void = () => {}): Promise<FollowerReport> {
  const dep = await startWorkerDeployment({ persisters: o.persisters, followers: 1, bcryptRounds: 4, log });
  try {
    const api = new MatrixApi(new HttpClient(dep.baseUrl));
    if (!dep.sharedSecret) throw new Error('the deployment has no registration_shared_secret');
    const sender: Session = await api.registerWithSharedSecret(dep.sharedSecret, 'follower_bench_sender', 'follower bench password');
    const rooms: string[] = [];
    for (let i = 0; i < o.rooms; i++) rooms.push(await api.createRoom(sender, { preset: 'private_chat', name: `follower bench ${i}` }));
    const follower = dep.processes.find((p) => p.name === 'follower1')!;
    const followerPid = follower.pid;
    // One idle long-poll on the follower, so that it follows the events rows.
    const idleUser: Session = await api.registerWithSharedSecret(dep.sharedSecret, 'follower_bench_idle', 'follower bench password');
    const poll = holdLongPoll(new MatrixApi(new HttpClient(follower.clientUrl!)), idleUser);
    const pids = { follower: followerPid, others: dep.processes.filter((p) => p.pid !== followerPid).map((p) => p.pid) };
    // Let start-up work (catch-up, schema checks, first connections) settle.
    await sleep(2000);
    let failures = 0;
    let seq = 0;
    let answeredBefore = 0;
    /** Sends at the rate for `seconds` (open loop); the number sent. */
    const sendFor = async (seconds: number): Promise<number> => {
      const t0 = performance.now();
      const total = Math.floor(o.rate * seconds);
      const inflight: Promise<void>[] = [];
      let sent = 0;
      for (let i = 0; i < total; i++, seq++) {
        const wait = t0 + (i * 1000) / o.rate - performance.now();
        if (wait > 0) await sleep(wait);
        const room = rooms[seq % rooms.length]!;
        inflight.push(
          api.send(sender, room, `follower-${seq}`, { msgtype: 'm.text', body: `follower bench ${seq}` }).then(
            () => void sent++,
            () => void failures++,
          ),
        );
      }
      await Promise.all(inflight);
      // Until the end of the planned duration, and a moment for the last rows to arrive.
      const rest = t0 + seconds * 1000 - performance.now();
      await sleep(Math.max(0, rest) + 200);
      return sent;
    };
    if (o.warmupS > 0) {
      log(`warm-up: ${o.rate} events/s for ${o.warmupS} s (not measured)`);
      await sendFor(o.warmupS);
      failures = 0;
      answeredBefore = poll.answered();
    }
    log(`idle phase: ${o.idleS} s`);
    const idle = await phase(pids, async () => {
      await sleep(o.idleS * 1000);
      return 0;
    });
    log(`load phase: ${o.rate} events/s for ${o.durationS} s`);
    const load = await phase(pids, () => sendFor(o.durationS));
    const idleRate = idle.wall_ms > 0 ? idle.follower_cpu_ms / idle.wall_ms : 0;
    const perEvent = load.events > 0 ? Math.max(0, load.follower_cpu_ms - idleRate * load.wall_ms) / load.events : NaN;
    await poll.stop();
    return { options: o, idle, load: { ...load, send_failures: failures }, follower_cpu_ms_per_event: Number(perEvent.toFixed(3)), long_polls_answered: poll.answered() - answeredBefore };
  } finally {
    await dep.stop();
  }
}

export function formatFollowerReport(r: FollowerReport): string {
  const rows: [string, string][] = [
    ['persisters', String(r.options.persisters)],
    ['idle: follower CPU % of a core', r.idle.follower_cpu_percent.toFixed(2)],
    [`load (${r.options.rate} events/s): follower CPU % of a core`, r.load.follower_cpu_percent.toFixed(2)],
    ['load: events sent', String(r.load.events)],
    ['load: send failures', String(r.load.send_failures)],
    ['follower CPU ms / event (above idle)', r.follower_cpu_ms_per_event.toFixed(3)],
    ['load: other processes CPU ms', r.load.others_cpu_ms.toFixed(0)],
    ['follower: idle long-polls answered', String(r.long_polls_answered)],
    ['load1 idle start → load end', `${r.idle.load1_start.toFixed(2)} → ${r.load.load1_end.toFixed(2)}`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  let o: FollowerOptions | 'help';
  try {
    o = parseFollowerArgs(argv);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${FOLLOWER_USAGE}`);
    return 2;
  }
  if (o === 'help') {
    console.log(FOLLOWER_USAGE);
    return 0;
  }
  let report: FollowerReport;
  try {
    report = await runFollowerBench(o, (s) => console.error(s));
  } catch (e) {
    if (e instanceof ShapeSkip) {
      console.error(`skipped: ${e.message}`);
      return 0;
    }
    throw e;
  }
  console.log(formatFollowerReport(report));
  if (o.jsonFile) writeFileSync(o.jsonFile, JSON.stringify(report, null, 2) + '\n');
  return report.load.send_failures ? 1 : 0;
}

runIfMain(import.meta.url, main);
