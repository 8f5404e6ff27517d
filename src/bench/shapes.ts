/**
 * `npm run bench:shapes -- [--shapes sqlite,postgres] [bench flags]`:
 * starts Myelin in each deployment shape, runs the same workload (same seed)
 * against each with the server's PID sampled, and prints one comparison
 * table (and, with --json, all figures).
 *
 * Shapes: monolith-sqlite, monolith-postgres, and the worker shapes (one and
 * two event persisters, PostgreSQL + Redis, behind nginx: worker-shape.ts).
 * The sampled server PIDs are every Myelin process of the shape (CPU and
 * PSS summed); `--nginx-pids` adds nginx's master and worker processes. The
 * JSON also has each process's own peak PSS/RSS and CPU over the workload.
 */
import { writeFileSync } from 'node:fs';
import { ArgError, parseArgs, USAGE } from './args.js';
import { cleanedUpAfterInterrupt, wasInterrupted } from './cleanup.js';
import { fmt, formatTable, toJson } from './report.js';
import { runBench, type BenchReport } from './runner.js';
import { ProcSampler, readMem, type PidFigures } from './procstat.js';

/** Interval of the whole-workload memory sampler (the per-round one samples every 200 ms). */
const WHOLE_WORKLOAD_SAMPLE_MS = 1000;
import { startMyelin, type Database } from './server.js';
import { persisterNames, ShapeSkip, startWorkerDeployment, type DeploymentProcess } from './worker-shape.js';
import { runIfMain, sleep } from './util.js';

interface ShapeDef {
  name: string;
  database?: Database;
  /** Event persisters of a worker shape. */
  persisters?: number;
}

const SHAPES: ShapeDef[] = [
  { name: 'monolith-sqlite', database: 'sqlite' },
  { name: 'monolith-postgres', database: 'postgres' },
  { name: 'workers-1-persister', persisters: 1 },
  { name: 'workers-2-persisters', persisters: 2 },
];

/** Short names accepted by --shapes. */
const ALIASES: Record<string, string> = {
  sqlite: 'monolith-sqlite',
  postgres: 'monolith-postgres',
  'workers-1': 'workers-1-persister',
  'workers-2': 'workers-2-persisters',
};

/** The figures of the comparison table: [label, scenario, figure]. */
const TABLE: [string, string, string][] = [
  ['send events/s', 'send', 'events_per_s'],
  ['send p50 ms', 'send', 'send_p50_ms'],
  ['send p99 ms', 'send', 'send_p99_ms'],
  ['server CPU ms / sent event', 'send', 'server_cpu_ms_per_op'],
  ['load generator CPU ms / sent event', 'send', 'client_cpu_ms_per_op'],
  ['delivery p50 ms', 'delivery', 'delivery_p50_ms'],
  ['delivery p99 ms', 'delivery', 'delivery_p99_ms'],
  ['delivery missing', 'delivery', 'missing'],
  ['delivery duplicates', 'delivery', 'duplicates'],
  ['delivery CPU ms / sent event', 'delivery', 'server_cpu_ms_per_op'],
  ['fanout all-have-it p50 ms', 'fanout', 'all_have_it_p50_ms'],
  ['initial sync ms', 'initial-sync', 'initial_ms'],
  ['initial sync bytes', 'initial-sync', 'initial_bytes'],
  ['incremental sync ms', 'initial-sync', 'incremental_ms'],
  ['empty /sync CPU ms', 'empty-sync', 'server_cpu_ms_per_op'],
  ['history events/s', 'history', 'events_per_s'],
  ['joins/s', 'joins', 'joins_per_s'],
  ['versions req/s', 'versions', 'requests_per_s'],
  ['whoami req/s', 'whoami', 'requests_per_s'],
  ['keys/query p50 ms', 'keys-query', 'query_p50_ms'],
  ['keys/claim p50 ms', 'keys-claim', 'claim_p50_ms'],
];

export interface StartupFigures {
  /** Spawn to the first 200 from /health. */
  start_ms: number;
  /** RSS / PSS one second after start, before any request but the readiness probes. */
  idle_rss_mb: number;
  idle_pss_mb: number;
}

/** One server process over the whole workload (setup included). */
export interface ProcessFigures {
  name: string;
  pid: number;
  /** Whether its CPU / PSS are in the per-scenario server figures (nginx only with --nginx-pids). */
  sampled: boolean;
  cpu_ms: number;
  peak_rss_mb: number;
  peak_pss_mb: number;
}

export interface ShapeResult {
  shape: string;
  startup?: StartupFigures;
  /** Per process: own peak PSS / RSS and CPU time (the per-scenario figures are their sums). */
  processes?: ProcessFigures[];
  skipped?: string;
  error?: string;
  report?: BenchReport;
}

function figure(r: BenchReport | undefined, scenario: string, key: string): number {
  return r?.scenarios.find((s) => s.name === scenario)?.summary[key]?.median ?? NaN;
}

function peakPss(r: BenchReport | undefined): number {
  const v = r?.scenarios.flatMap((s) => s.rounds.map((x) => x.metrics.server_peak_pss_mb ?? NaN)).filter(Number.isFinite) ?? [];
  return v.length ? Math.max(...v) : NaN;
}

export function comparisonTable(results: readonly ShapeResult[]): string {
  const ran = results.filter((r) => r.report);
  const rows: string[][] = [['figure (median of rounds)', ...ran.map((r) => r.shape)]];
  const scenarios = new Set(ran.flatMap((r) => r.report!.scenarios.map((s) => s.name)));
  for (const [label, sc, key] of TABLE) if (scenarios.has(sc)) rows.push([label, ...ran.map((r) => fmt(figure(r.report, sc, key)))]);
  rows.push(['start to /health ms', ...ran.map((r) => fmt(r.startup?.start_ms ?? NaN))]);
  rows.push(['idle RSS MiB', ...ran.map((r) => fmt(r.startup?.idle_rss_mb ?? NaN))]);
  rows.push(['idle PSS MiB', ...ran.map((r) => fmt(r.startup?.idle_pss_mb ?? NaN))]);
  rows.push(['server peak PSS MiB', ...ran.map((r) => fmt(peakPss(r.report)))]);
  rows.push(['server processes sampled', ...ran.map((r) => String(r.report!.pids.length))]);
  rows.push(['load1 start → end', ...ran.map((r) => `${fmt(r.report!.machine.loadStart.load1)} → ${fmt(r.report!.machine.loadEnd.load1)}`)]);
  rows.push(['checks', ...ran.map((r) => (r.report!.ok ? 'ok' : 'FAILED'))]);
  return formatTable(rows);
}

/** A started shape: the address the load generator uses and the processes behind it. */
interface ShapeServer {
  baseUrl: string;
  sharedSecret?: string;
  startMs: number;
  /** Myelin's processes (always sampled). */
  processes: DeploymentProcess[];
  /** Other server-side processes (nginx), sampled with --nginx-pids. */
  extraProcesses(): DeploymentProcess[];
  describe: string;
  stop(): Promise<void>;
}

async function startShape(shape: ShapeDef): Promise<ShapeServer> {
  if (shape.database) {
    const s = await startMyelin({ database: shape.database, bcryptRounds: 4 });
    return { ...s, processes: [{ name: 'myelin', pid: s.pid }], extraProcesses: () => [], describe: `pid ${s.pid}, data in ${s.dir}` };
  }
  const d = await startWorkerDeployment({ persisters: shape.persisters!, bcryptRounds: 4, log: (l) => console.log(`### ${shape.name}: ${l}`) });
  return {
    ...d,
    extraProcesses: () => d.nginxProcesses(),
    describe: `${d.processes.map((p) => `${p.name} ${p.pid}`).join(', ')}; nginx ${d.nginxProcesses().map((p) => p.pid).join(', ')}; in ${d.dir}`,
  };
}

/** Summed RSS / PSS of the processes now (MiB). */
function idleFigures(startMs: number, procs: readonly DeploymentProcess[]): StartupFigures {
  let rss = 0;
  let pss = 0;
  for (const p of procs) {
    const m = readMem(p.pid);
    rss += m ? m.rssKb : NaN;
    pss += m ? m.pssKb : NaN;
  }
  return { start_ms: startMs, idle_rss_mb: rss / 1024, idle_pss_mb: pss / 1024 };
}

/** The PIDs the load generator samples: every Myelin process, and nginx's when asked. */
export function sampledPids(myelin: readonly DeploymentProcess[], nginx: readonly DeploymentProcess[], withNginx: boolean): number[] {
  return [...new Set([...myelin, ...(withNginx ? nginx : [])].map((p) => p.pid))];
}

/** Names each process's own figures; `sampled` says whether they are in the summed server figures. */
export function processFigures(procs: readonly DeploymentProcess[], perPid: readonly PidFigures[], sampled: readonly number[]): ProcessFigures[] {
  const by = new Map(perPid.map((f) => [f.pid, f]));
  return procs.map((p) => {
    const f = by.get(p.pid);
    return {
      name: p.name,
      pid: p.pid,
      sampled: sampled.includes(p.pid),
      cpu_ms: f?.cpuMs ?? NaN,
      peak_rss_mb: f?.peakRssMb ?? NaN,
      peak_pss_mb: f?.peakPssMb ?? NaN,
    };
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  // Our own flags; everything else goes to the load generator's parser.
  let wanted = ['monolith-sqlite', 'monolith-postgres', 'workers-1-persister', 'workers-2-persisters'];
  const rest: string[] = [];
  let nginxPids = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--nginx-pids') nginxPids = true;
    else if (a === '--shapes' || a.startsWith('--shapes=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) return usage('--shapes needs a value');
      wanted = v.split(',').map((s) => ALIASES[s.trim()] ?? s.trim());
      const unknown = wanted.filter((w) => !SHAPES.some((s) => s.name === w));
      if (unknown.length) return usage(`unknown shape(s) ${unknown.join(', ')} (known: ${SHAPES.map((s) => s.name).join(', ')})`);
    } else if (a === '--base-url' || a.startsWith('--base-url=') || a === '--pid' || a.startsWith('--pid=') || a === '--shared-secret') {
      return usage(`${a.split('=')[0]} is set by the shapes script itself`);
    } else rest.push(a);
  }
  let opts;
  try {
    opts = parseArgs(['--base-url', 'http://placeholder.invalid', ...rest]);
  } catch (e) {
    if (e instanceof ArgError) return usage(e.message);
    throw e;
  }
  if (!opts) return usage();

  const results: ShapeResult[] = [];
  for (const shape of SHAPES.filter((s) => wanted.includes(s.name))) {
    if (wasInterrupted()) break;
    console.log(`\n### ${shape.name}: starting Myelin`);
    let server: ShapeServer;
    try {
      server = await startShape(shape);
    } catch (e) {
      if (e instanceof ShapeSkip) {
        console.log(`### ${shape.name}: skipped — ${e.message}`);
        results.push({ shape: shape.name, skipped: e.message });
      } else {
        console.log(`### ${shape.name}: could not start — ${(e as Error).message}`);
        results.push({ shape: shape.name, error: (e as Error).message });
      }
      continue;
    }
    try {
      console.log(`### ${shape.name}: ${server.baseUrl}, ${server.describe}`);
      await sleep(1000);
      const startup = idleFigures(server.startMs, server.processes);
      console.log(`### ${shape.name}: started in ${fmt(startup.start_ms)} ms; idle RSS ${fmt(startup.idle_rss_mb)} MiB, PSS ${fmt(startup.idle_pss_mb)} MiB`);
      const extra = server.extraProcesses();
      const pids = sampledPids(server.processes, extra, nginxPids);
      // Per-process figures over the whole workload, beside the runner's per-round sums. Reading
      // smaps_rollup costs the load generator about 1 ms of CPU per 100 MiB of the process read, so
      // this sampler reads once a second; the per-round peaks come from the runner's own sampler.
      const all = [...server.processes, ...extra];
      const sampler = new ProcSampler(all.map((p) => p.pid), WHOLE_WORKLOAD_SAMPLE_MS);
      sampler.start();
      let perPid: PidFigures[] = [];
      let report: BenchReport;
      try {
        report = await runBench({ ...opts, jsonFile: undefined, baseUrl: server.baseUrl, sharedSecret: server.sharedSecret, pids, roomWriters: shape.persisters ? persisterNames(shape.persisters) : undefined });
      } finally {
        perPid = sampler.stop().perPid;
      }
      results.push({ shape: shape.name, startup, report, processes: processFigures(all, perPid, pids) });
    } catch (e) {
      console.log(`### ${shape.name}: bench failed — ${(e as Error).message}`);
      results.push({ shape: shape.name, error: (e as Error).message });
    } finally {
      await server.stop();
    }
  }

  if (wasInterrupted()) {
    // The signal handler is tearing everything down and exits when done.
    await cleanedUpAfterInterrupt();
    return 130;
  }
  console.log(`\n=== comparison (seed ${opts.seed}, ${opts.users} users, ${opts.rooms} rooms, ${opts.durationS}s, concurrency ${opts.concurrency}, ${opts.rounds} round(s)) ===`);
  if (results.some((r) => r.report)) console.log(comparisonTable(results));
  for (const r of results) if (!r.report) console.log(`${r.shape}: ${r.skipped ? 'skipped' : 'error'} — ${r.skipped ?? r.error}`);
  if (opts.jsonFile) {
    writeFileSync(opts.jsonFile, toJson({ tool: 'myelin-bench-shapes', seed: opts.seed, shapes: results }) + '\n');
    console.log(`figures written to ${opts.jsonFile}`);
  }
  const failed = results.some((r) => r.error || (r.report && !r.report.ok));
  return failed ? 1 : 0;
}

function usage(err?: string): number {
  const text = `Usage: npm run bench:shapes -- [--shapes LIST] [load generator flags except --base-url/--pid/--shared-secret]
  --shapes LIST   comma-separated: ${SHAPES.map((s) => s.name).join(', ')}
                  (sqlite, postgres, workers-1, workers-2 are short names; default all)
  --nginx-pids    worker shapes: also count nginx's master and worker processes in the server CPU / PSS
Load generator flags:
${USAGE.split('\n').slice(2).join('\n')}`;
  if (err) {
    console.error(`bench:shapes: ${err}\n\n${text}`);
    return 2;
  }
  console.log(text);
  return 0;
}

// Run when executed directly (node dist/bench/shapes.js), not when imported.
runIfMain(import.meta.url, main);
