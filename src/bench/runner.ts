/**
 * Runs the load generator: checks the target, registers users and creates
 * rooms, then runs each chosen scenario --rounds times, sampling the server
 * PIDs and the machine load around every round.
 */
import os from 'node:os';
import type { BenchOptions, ScenarioName } from './args.js';
import { HttpClient, MatrixApi, MatrixHttpError, UnreachableError, type Session } from './client.js';
import type { BenchContext } from './context.js';
import { clockTicksPerSecond, ProcSampler, readLoadavg, samplingCpuMs, type LoadAvg } from './procstat.js';
import { aggregateRounds, fmt, fmtMedianRange, formatFigures, type RoundResult, type ScenarioReport } from './report.js';
import { makeRunId, Rng } from './rng.js';
import { roomsSplitEvenly } from './room-split.js';
import { SCENARIO_IMPLS } from './scenarios/index.js';
import { pool } from './util.js';

/** A problem with the target that stops the run before any scenario (exit code 2). */
export class TargetError extends Error {}

export interface BenchReport {
  tool: 'myelin-bench';
  startedAt: string;
  finishedAt: string;
  target: { baseUrl: string; versions: string[]; registration: 'shared-secret' | 'open' };
  seed: string;
  runId: string;
  options: Omit<BenchOptions, 'sharedSecret'>;
  machine: { cpus: number; clkTck: number; loadStart: LoadAvg; loadEnd: LoadAvg };
  pids: number[];
  setup: { users: number; rooms: number; ms: number };
  rateLimited: number;
  scenarios: ScenarioReport[];
  ok: boolean;
}

export interface RunHooks {
  log?: (line: string) => void;
  /** Salt mixed into the run id (default: the start time). */
  runIdSalt?: string;
}

const PASSWORD_PREFIX = 'bench-pw-';

export async function runBench(opts: BenchOptions, hooks: RunHooks = {}): Promise<BenchReport> {
  const log = hooks.log ?? ((l: string) => console.log(l));
  const say = (l: string) => {
    if (!opts.quiet) log(l);
  };
  const startedAt = new Date();
  const loadStart = readLoadavg();
  const http = new HttpClient(opts.baseUrl);
  const api = new MatrixApi(http);

  // 1. Is there a Matrix server at all?
  let versions: string[];
  try {
    const res = await api.versions();
    versions = Array.isArray(res.json?.versions) ? res.json.versions : [];
    if (versions.length === 0) throw new TargetError(`${opts.baseUrl}/_matrix/client/versions did not list any versions — is this a Matrix homeserver?`);
  } catch (e) {
    if (e instanceof TargetError) throw e;
    if (e instanceof UnreachableError) throw new TargetError(`target unreachable: ${e.message}`);
    throw new TargetError(`target did not answer GET /_matrix/client/versions: ${(e as Error).message}`);
  }

  const runId = makeRunId(opts.seed, hooks.runIdSalt ?? String(startedAt.getTime()));
  const rng = new Rng(opts.seed);
  const password = PASSWORD_PREFIX + new Rng(`${opts.seed}/pw`).token(16);
  const registerUser = async (tag: string): Promise<Session> => {
    const username = `${runId}_${tag}`;
    try {
      return opts.sharedSecret
        ? await api.registerWithSharedSecret(opts.sharedSecret, username, password)
        : await api.registerOpen(username, password);
    } catch (e) {
      const how = opts.sharedSecret ? 'shared-secret registration (/_synapse/admin/v1/register)' : 'open registration (/register)';
      if (e instanceof MatrixHttpError || e instanceof UnreachableError)
        throw new TargetError(`target refused ${how} of ${username}: ${e.message}`);
      throw e;
    }
  };

  // 2. Users and rooms.
  say(`bench ${runId}: target ${opts.baseUrl} (${versions.at(-1)}), seed ${opts.seed}, ${opts.users} users, ${opts.rooms} rooms`);
  const tSetup = performance.now();
  const users = await pool(Array.from({ length: opts.users }), opts.concurrency, (_, i) => registerUser(`u${i}`));
  const owner = users[0]!;
  const newRoom = () => api.createRoom(owner, { preset: 'public_chat', name: `bench ${runId}` });
  let rooms: string[];
  if (opts.roomWriters && opts.roomWriters.length > 1) {
    // One at a time until every persister has its share (the rest stay empty).
    const split = await roomsSplitEvenly(opts.rooms, opts.roomWriters, newRoom);
    rooms = split.rooms;
    say(`rooms spread over ${opts.roomWriters.join(', ')} (${split.created} created)`);
  } else {
    rooms = await pool(Array.from({ length: opts.rooms }), opts.concurrency, newRoom);
  }
  const joins = users.slice(1).flatMap((u) => rooms.map((r) => ({ u, r })));
  await pool(joins, opts.concurrency, ({ u, r }) => api.join(u, r));
  const setupMs = performance.now() - tSetup;
  say(`setup: ${users.length} users, ${rooms.length} rooms, ${joins.length} joins in ${fmt(setupMs)} ms`);

  const ctx: BenchContext = { opts, api, rng, runId, users, rooms, password, registerUser, log: say };
  const scenarios: ScenarioReport[] = [];
  for (const name of opts.scenarios) scenarios.push(await runScenario(ctx, name, log));

  const report: BenchReport = {
    tool: 'myelin-bench',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    target: { baseUrl: opts.baseUrl, versions, registration: opts.sharedSecret ? 'shared-secret' : 'open' },
    seed: opts.seed,
    runId,
    options: { ...opts, sharedSecret: undefined } as Omit<BenchOptions, 'sharedSecret'>,
    machine: { cpus: os.cpus().length, clkTck: clockTicksPerSecond(), loadStart, loadEnd: readLoadavg() },
    pids: opts.pids,
    setup: { users: users.length, rooms: rooms.length, ms: setupMs },
    rateLimited: http.rateLimited,
    scenarios,
    ok: scenarios.every((s) => s.ok),
  };
  if (http.rateLimited) log(`note: the target rate-limited ${http.rateLimited} requests (retried after retry_after_ms); figures include the waits`);
  return report;
}

async function runScenario(ctx: BenchContext, name: ScenarioName, log: (l: string) => void): Promise<ScenarioReport> {
  const impl = SCENARIO_IMPLS[name];
  const { opts } = ctx;
  const rounds: RoundResult[] = [];
  let state: unknown;
  try {
    state = impl.prepare ? await impl.prepare(ctx) : undefined;
  } catch (e) {
    const problem = `preparation failed: ${(e as Error).message}`;
    log(`== ${name} FAILED\n  ! ${problem}`);
    rounds.push({ round: 1, metrics: {}, ok: false, problems: [problem] });
    return { name, opsLabel: 'op', rounds, summary: {}, ok: false };
  }
  let opsLabel = 'op';
  if (opts.warmupS > 0) {
    // Unmeasured: each server process's JIT compiles the hot paths it serves over its first minute or two
    // of load; without this the first rounds measure V8's compilers as much as the server.
    const t0 = performance.now();
    try {
      const warm = await impl.run({ ...ctx, opts: { ...opts, durationS: opts.warmupS } }, state, 0);
      log(`== ${name} warm-up: ${warm.ops} ${warm.opsLabel}s in ${((performance.now() - t0) / 1000).toFixed(1)} s (not measured)${warm.ok ? '' : ' — had problems: ' + warm.problems.join('; ')}`);
    } catch (e) {
      log(`== ${name} warm-up failed: ${(e as Error).message}`);
    }
  }
  for (let round = 1; round <= opts.rounds; round++) {
    const load0 = readLoadavg();
    const sampler = new ProcSampler(opts.pids);
    sampler.start();
    const cpu0 = process.cpuUsage();
    const sampling0 = samplingCpuMs();
    const t0 = performance.now();
    let outcome;
    try {
      outcome = await impl.run(ctx, state, round);
    } catch (e) {
      outcome = { metrics: {}, ops: 0, opsLabel, ok: false, problems: [`scenario failed: ${(e as Error).message}`] };
    }
    const wallMs = performance.now() - t0;
    // The generator's CPU for the workload: without what reading the servers' /proc cost it
    // (this round's sampler and any other, e.g. the shapes' whole-workload one), reported apart.
    const samplingMs = samplingCpuMs() - sampling0;
    const clientCpuMs = cpuMs(process.cpuUsage(cpu0)) - samplingMs;
    const proc = sampler.stop();
    const load1 = readLoadavg();
    opsLabel = outcome.opsLabel;
    const metrics: Record<string, number> = { ...outcome.metrics, wall_ms: wallMs };
    if (opts.pids.length) {
      metrics.server_cpu_ms = proc.cpuMs;
      metrics.server_cpu_ms_per_op = outcome.ops > 0 ? proc.cpuMs / outcome.ops : NaN;
      metrics.server_peak_rss_mb = proc.peakRssMb;
      metrics.server_peak_pss_mb = proc.peakPssMb;
      if (proc.unreadable.length) outcome.problems.push(`could not read /proc of pid(s) ${proc.unreadable.join(', ')}`);
    }
    metrics.client_cpu_ms = clientCpuMs;
    metrics.client_cpu_ms_per_op = outcome.ops > 0 ? clientCpuMs / outcome.ops : NaN;
    metrics.client_sampling_cpu_ms = samplingMs;
    metrics.load1_start = load0.load1;
    metrics.load1_end = load1.load1;
    rounds.push({ round, metrics, ok: outcome.ok, problems: outcome.problems });
    if (!opts.quiet || opts.rounds === 1) {
      const head = `== ${name}${opts.rounds > 1 ? ` (round ${round}/${opts.rounds})` : ''} ${outcome.ok ? 'ok' : 'FAILED'}`;
      const figs = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [displayName(k, outcome.opsLabel), fmt(v)]));
      log(`${head}\n${formatFigures(figs)}${outcome.problems.map((p) => `\n  ! ${p}`).join('')}`);
    }
  }
  const summary = aggregateRounds(rounds);
  if (opts.rounds > 1) {
    const figs = Object.fromEntries(Object.entries(summary).map(([k, v]) => [displayName(k, opsLabel), fmtMedianRange(v)]));
    log(`== ${name}: median [min–max] of ${opts.rounds} rounds\n${formatFigures(figs)}`);
  }
  return { name, opsLabel, rounds, summary, ok: rounds.every((r) => r.ok) };
}

/** User + system CPU of a `process.cpuUsage()` difference, ms. */
function cpuMs(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000;
}

/** Printed name of a figure: the CPU-per-operation figures name their operation. */
function displayName(key: string, opsLabel: string): string {
  const per = key.match(/^(server|client)_cpu_ms_per_op$/);
  return per ? `${per[1]}_cpu_ms_per_${opsLabel.replace(/ /g, '_')}` : key;
}
