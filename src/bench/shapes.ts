/**
 * `npm run bench:shapes -- [--shapes sqlite,postgres] [bench flags]`:
 * starts Myelin in each deployment shape, runs the same workload (same seed)
 * against each with the server's PID sampled, and prints one comparison
 * table (and, with --json, all figures).
 *
 * Shapes: monolith-sqlite, monolith-postgres. The worker shapes (one and
 * two event persisters behind nginx) are reported as skipped until worker
 * mode and its launcher exist.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { ArgError, parseArgs, USAGE } from './args.js';
import { fmt, formatTable, toJson } from './report.js';
import { runBench, type BenchReport } from './runner.js';
import { readMem } from './procstat.js';
import { startMyelin, type Database } from './server.js';
import { runIfMain, sleep } from './util.js';

interface ShapeDef {
  name: string;
  database?: Database;
  workers?: number;
}

const SHAPES: ShapeDef[] = [
  { name: 'monolith-sqlite', database: 'sqlite' },
  { name: 'monolith-postgres', database: 'postgres' },
  { name: 'workers-1-persister', workers: 1 },
  { name: 'workers-2-persisters', workers: 2 },
];

/** The figures of the comparison table: [label, scenario, figure]. */
const TABLE: [string, string, string][] = [
  ['send events/s', 'send', 'events_per_s'],
  ['send p50 ms', 'send', 'send_p50_ms'],
  ['send p99 ms', 'send', 'send_p99_ms'],
  ['server CPU ms / sent event', 'send', 'server_cpu_ms_per_op'],
  ['delivery p50 ms', 'delivery', 'delivery_p50_ms'],
  ['delivery p99 ms', 'delivery', 'delivery_p99_ms'],
  ['delivery missing', 'delivery', 'missing'],
  ['delivery duplicates', 'delivery', 'duplicates'],
  ['delivery CPU ms / sent event', 'delivery', 'server_cpu_ms_per_op'],
  ['fanout all-have-it p50 ms', 'fanout', 'all_have_it_p50_ms'],
  ['initial sync ms', 'initial-sync', 'initial_ms'],
  ['initial sync bytes', 'initial-sync', 'initial_bytes'],
  ['incremental sync ms', 'initial-sync', 'incremental_ms'],
  ['history events/s', 'history', 'events_per_s'],
  ['joins/s', 'joins', 'joins_per_s'],
  ['versions req/s', 'versions', 'requests_per_s'],
  ['whoami req/s', 'whoami', 'requests_per_s'],
  ['keys/query p50 ms', 'keys-query', 'query_p50_ms'],
  ['keys/claim p50 ms', 'keys-claim', 'claim_p50_ms'],
];

function workerSkipReason(): string {
  let nginx = true;
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
  } catch {
    nginx = false;
  }
  return `worker mode has no launcher the shapes script can drive yet${nginx ? '' : ' (and nginx is not installed)'}`;
}

export interface StartupFigures {
  /** Spawn to the first 200 from /health. */
  start_ms: number;
  /** RSS / PSS one second after start, before any request but the readiness probes. */
  idle_rss_mb: number;
  idle_pss_mb: number;
}

export interface ShapeResult {
  shape: string;
  startup?: StartupFigures;
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
  rows.push(['load1 start → end', ...ran.map((r) => `${fmt(r.report!.machine.loadStart.load1)} → ${fmt(r.report!.machine.loadEnd.load1)}`)]);
  rows.push(['checks', ...ran.map((r) => (r.report!.ok ? 'ok' : 'FAILED'))]);
  return formatTable(rows);
}

export async function main(argv: readonly string[]): Promise<number> {
  // Our own flags; everything else goes to the load generator's parser.
  let wanted = ['monolith-sqlite', 'monolith-postgres', 'workers-1-persister', 'workers-2-persisters'];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--shapes' || a.startsWith('--shapes=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) return usage('--shapes needs a value');
      wanted = v.split(',').map((s) => {
        const t = s.trim();
        return t === 'sqlite' || t === 'postgres' ? `monolith-${t}` : t;
      });
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
    if (!shape.database) {
      const why = workerSkipReason();
      console.log(`\n### ${shape.name}: skipped — ${why}`);
      results.push({ shape: shape.name, skipped: why });
      continue;
    }
    console.log(`\n### ${shape.name}: starting Myelin`);
    let server;
    try {
      server = await startMyelin({ database: shape.database, bcryptRounds: 4 });
    } catch (e) {
      console.log(`### ${shape.name}: could not start — ${(e as Error).message}`);
      results.push({ shape: shape.name, error: (e as Error).message });
      continue;
    }
    try {
      console.log(`### ${shape.name}: ${server.baseUrl}, pid ${server.pid}, data in ${server.dir}`);
      await sleep(1000);
      const mem = readMem(server.pid);
      const startup: StartupFigures = {
        start_ms: server.startMs,
        idle_rss_mb: mem ? mem.rssKb / 1024 : NaN,
        idle_pss_mb: mem ? mem.pssKb / 1024 : NaN,
      };
      console.log(`### ${shape.name}: started in ${fmt(startup.start_ms)} ms; idle RSS ${fmt(startup.idle_rss_mb)} MiB, PSS ${fmt(startup.idle_pss_mb)} MiB`);
      const report = await runBench({ ...opts, jsonFile: undefined, baseUrl: server.baseUrl, sharedSecret: server.sharedSecret, pids: [server.pid] });
      results.push({ shape: shape.name, startup, report });
    } catch (e) {
      console.log(`### ${shape.name}: bench failed — ${(e as Error).message}`);
      results.push({ shape: shape.name, error: (e as Error).message });
    } finally {
      await server.stop();
    }
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
  --shapes LIST   comma-separated: ${SHAPES.map((s) => s.name).join(', ')} (sqlite/postgres are short for the monoliths; default all)
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
