/**
 * `myelinctl start|stop|restart [-w WORKER.yaml] [-a WORKERS_DIR] CONFIG [CONFIG...]`,
 * like Synapse's synctl:
 *
 * - start: the main process first (unless -w names workers only), waiting for
 *   its /health, then each worker; each runs detached as
 *   `myelin run -c CONFIG... [-c WORKER.yaml]` with its output in a log file
 *   and its pid in a pid file (`pid_file` / `worker_pid_file`, default
 *   `<config dir>/<name>.pid`; the log is beside it, `<name>.log`), in
 *   myelinctl's environment plus the malloc settings and node options of
 *   launch-env.ts;
 * - stop: the workers, then the main process, each with SIGTERM, only
 *   through the pid files this tool wrote, and only when the pid still
 *   belongs to a `myelin run` process;
 * - with -w only the given workers are started/stopped; with -a every
 *   worker file in the directory as well as the main process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type LoadedConfig } from '../config/load.js';
import { loadDeployment, workerFilesIn } from '../workers/deployment.js';
import { flagAll, parseArgs } from './args.js';
import { launchEnv, launchNodeArgs } from './launch-env.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/myelin.js');

export const MYELINCTL_USAGE = `usage: myelinctl start|stop|restart [-w WORKER.yaml ...] [-a WORKERS_DIR] CONFIG [CONFIG ...]

  start     start the main process (then the workers of -a), or only the -w workers
  stop      stop them (workers first), through the pid files myelinctl wrote
  restart   stop, then start
`;

interface Proc {
  name: string;
  /** Config files of the process (shared ones, then its worker file). */
  configs: string[];
  pidFile: string;
  logFile: string;
  /** /health URL of its first HTTP listener, if it has one. */
  healthUrl?: string;
}

function healthUrlOf(config: LoadedConfig, worker: boolean): string | undefined {
  const listeners = worker ? (config.worker_listeners ?? []) : config.listeners;
  const l = listeners.find((x) => x.type === 'http' && x.port !== undefined);
  if (!l) return undefined;
  let host = l.bind_addresses?.[0] ?? l.bind_address ?? '127.0.0.1';
  if (host === '0.0.0.0' || host === '::' || host === '') host = '127.0.0.1';
  if (host.includes(':')) host = `[${host}]`;
  return `${l.tls ? 'https' : 'http'}://${host}:${l.port}/health`;
}

function procOf(name: string, configs: string[], config: LoadedConfig, worker: boolean): Proc {
  const pidFile = resolve(config.configDir, (worker ? config.worker_pid_file : config.pid_file) ?? `${name}.pid`);
  return { name, configs, pidFile, logFile: pidFile.replace(/\.pid$/, '') + '.log', healthUrl: healthUrlOf(config, worker) };
}

function readPid(p: Proc): number | undefined {
  try {
    const n = Number(readFileSync(p.pidFile, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e?.code === 'EPERM';
  }
}

/** Whether pid is (still) a `myelin run` process: never signal a recycled pid. */
function isOurs(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmd.some((a) => a.endsWith('myelin.js')) && cmd.includes('run');
  } catch {
    return process.platform !== 'linux'; // no /proc: trust our pid file
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitHealthy(p: Proc, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) throw new Error(`${p.name} exited during start-up; see ${p.logFile}`);
    if (!p.healthUrl) {
      await sleep(1000);
      if (alive(pid)) return;
      continue;
    }
    try {
      const r = await fetch(p.healthUrl, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await sleep(200);
  }
  throw new Error(`${p.name} did not answer ${p.healthUrl} within ${timeoutMs / 1000}s; see ${p.logFile}`);
}

async function start(p: Proc, log: (s: string) => void): Promise<void> {
  const old = readPid(p);
  if (old !== undefined) {
    if (isOurs(old)) {
      log(`${p.name} is already running (pid ${old})`);
      return;
    }
    rmSync(p.pidFile, { force: true }); // stale
  }
  mkdirSync(dirname(p.pidFile), { recursive: true });
  const fd = openSync(p.logFile, 'a');
  const child = spawn(process.execPath, [...launchNodeArgs(process.env), BIN, 'run', ...p.configs.flatMap((c) => ['-c', c])], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: launchEnv(process.env),
  });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${p.name}`);
  writeFileSync(p.pidFile, `${child.pid}\n`);
  log(`started ${p.name} (pid ${child.pid}), log ${p.logFile}`);
  try {
    await waitHealthy(p, child.pid, 60_000);
  } catch (e) {
    if (!alive(child.pid)) rmSync(p.pidFile, { force: true });
    throw e;
  }
}

async function stop(p: Proc, log: (s: string) => void): Promise<void> {
  const pid = readPid(p);
  if (pid === undefined) {
    log(`${p.name} is not running (no pid file ${p.pidFile})`);
    return;
  }
  if (!isOurs(pid)) {
    log(`${p.name}: pid ${pid} is not a running myelin process; removing stale ${p.pidFile}`);
    rmSync(p.pidFile, { force: true });
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) throw new Error(`${p.name} (pid ${pid}) did not stop within 20s`);
  rmSync(p.pidFile, { force: true });
  log(`stopped ${p.name} (pid ${pid})`);
}

export async function myelinctl(argv: string[], log: (s: string) => void = (s) => console.log(s)): Promise<void> {
  const [action, ...rest] = argv;
  if (!action || !['start', 'stop', 'restart'].includes(action)) throw new Error(MYELINCTL_USAGE);
  const a = parseArgs(rest);
  const configs = [...a.positional, ...flagAll(a, 'c', 'config-path')].map((p) => resolve(p));
  if (!configs.length) throw new Error(`myelinctl: CONFIG is required\n\n${MYELINCTL_USAGE}`);
  for (const c of configs) if (!existsSync(c)) throw new Error(`myelinctl: no such config file ${c}`);
  const only = flagAll(a, 'w', 'worker').map((p) => resolve(p));
  const dirWorkers = flagAll(a, 'a', 'all-processes', 'workers-dir').flatMap(workerFilesIn);
  const d = loadDeployment(configs, [...new Set([...only, ...dirWorkers])]);
  const main = procOf('homeserver', configs, d.shared, false);
  const workers = d.workers
    .filter((w) => !only.length || only.includes(w.path))
    .map((w) => procOf(w.config.worker_name!, [...configs, w.path], w.config, true));
  const procs = only.length ? workers : [main, ...workers];

  if (action === 'stop' || action === 'restart') {
    for (const p of [...procs].reverse()) await stop(p, log);
  }
  if (action === 'start' || action === 'restart') {
    for (const p of procs) await start(p, log);
  }
}

export async function main(argv: string[]): Promise<void> {
  try {
    await myelinctl(argv);
  } catch (e) {
    if (e instanceof ConfigError) throw new Error(`myelinctl: ${e.message}`);
    throw e;
  }
}
