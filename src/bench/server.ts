/**
 * Starting and stopping a real Myelin for the shapes script and the smoke
 * test, through the server's own CLI:
 *   node bin/myelin.js generate-config --server-name bench.local
 *        --config-path <tmp>/homeserver.yaml --data-dir <tmp> --port <port>
 *   node bin/myelin.js run -c <tmp>/homeserver.yaml [-c <tmp>/postgres.yaml]
 * For PostgreSQL a fresh database is created (and dropped afterwards) and a
 * second YAML file overrides `database`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { onInterrupt } from './cleanup.js';
import { sleep } from './util.js';

const run = promisify(execFile);

/** The repository root (this file is src/bench/server.ts or dist/bench/server.js). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MYELIN_BIN = path.join(REPO_ROOT, 'bin', 'myelin.js');
/** The built CLI bin/myelin.js loads; without it no server can start. */
export const MYELIN_CLI = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

export type Database = 'sqlite' | 'postgres';

export interface RunningMyelin {
  baseUrl: string;
  pid: number;
  sharedSecret?: string;
  dir: string;
  logFile: string;
  /** From spawning `myelin run` to the first 200 from GET /health (polled every 10 ms). */
  startMs: number;
  stop(): Promise<void>;
}

export interface PgTarget {
  host: string;
  port: number;
  user: string;
}
export const DEFAULT_PG: PgTarget = { host: '127.0.0.1', port: 5432, user: 'postgres' };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function psql(pg: PgTarget, sql: string): Promise<void> {
  await run('psql', ['-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    timeout: 30_000,
  });
}

/** Every database the bench creates is named `<prefix><time>_<random>`. */
export const BENCH_DB_PREFIX = 'myelin_bench_';

/** Creates a fresh PostgreSQL database; `drop` removes it (even with connections left). */
export async function createBenchDatabase(pg: PgTarget = DEFAULT_PG): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = `${BENCH_DB_PREFIX}${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  await psql(pg, `CREATE DATABASE "${name}"`);
  return { name, drop: () => psql(pg, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/**
 * The bench's tuning of any Myelin config: a cheap bcrypt cost (the setup's
 * registrations and logins are fast; nothing timed hashes passwords) and rate
 * limits out of the way — the figures measure the server, not its limiter
 * (keys-query/keys-claim log in many devices of one user; send is meant to flood).
 */
export function benchConfigOverrides(bcryptRounds: number): Record<string, unknown> {
  const rc = { per_second: 100000, burst_count: 100000 };
  return { bcrypt_rounds: bcryptRounds, rc_message: rc, rc_registration: rc, rc_login: { address: rc, account: rc, failed_attempts: rc } };
}

/**
 * `node [NODE_ARGS] bin/myelin.js run -c A -c B ...` with its output
 * appended to `logFile`, in `launch.env` (default: the bench's own
 * environment). The worker shape passes what myelinctl gives its processes
 * (src/cli/launch-env.ts): its environment and node options, which come
 * before MYELIN_BENCH_NODE_ARGS (so that those win).
 */
export function spawnMyelin(configs: readonly string[], logFile: string, launch: { env?: NodeJS.ProcessEnv; nodeArgs?: readonly string[] } = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  const nodeArgs = [...(launch.nodeArgs ?? []), ...(process.env.MYELIN_BENCH_NODE_ARGS ? process.env.MYELIN_BENCH_NODE_ARGS.split(' ') : [])];
  try {
    return spawn(process.execPath, [...nodeArgs, MYELIN_BIN, 'run', ...configs.flatMap((c) => ['-c', c])], { cwd: REPO_ROOT, env: launch.env ?? process.env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(proc: ChildProcess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  if ((await Promise.race([done.then(() => true), sleep(graceMs).then(() => false)])) === false) {
    proc.kill('SIGKILL');
    await done;
  }
}

/**
 * Polls `url` every 10 ms until it answers 200; returns the ms from `since`
 * (a performance.now() value) to that answer. Fails when the process exits
 * or the deadline passes, with the tail of its log.
 */
export async function waitForOk(url: string, proc: ChildProcess, logFile: string, since: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`myelin (${path.basename(logFile)}) exited with ${proc.signalCode ?? proc.exitCode} before answering; log tail:\n${tail(logFile)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return performance.now() - since;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${timeoutMs / 1000}s; log tail:\n${tail(logFile)}`);
    await sleep(10);
  }
}

/** Read `registration_shared_secret` from a homeserver YAML file (undefined if absent). */
export function readSharedSecret(configPath: string): string | undefined {
  const doc = parseYaml(readFileSync(configPath, 'utf8')) as Record<string, unknown> | null;
  const s = doc?.registration_shared_secret;
  return typeof s === 'string' && s ? s : undefined;
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startMyelin(opts: {
  database: Database;
  pg?: PgTarget;
  startTimeoutMs?: number;
  /** Overrides `bcrypt_rounds` (a cheap cost makes the setup's registrations and logins fast; nothing timed hashes passwords). */
  bcryptRounds?: number;
}): Promise<RunningMyelin> {
  if (!existsSync(MYELIN_CLI)) throw new Error(`${path.relative(REPO_ROOT, MYELIN_CLI)} does not exist; run "npm run build" first`);
  const dir = mkdtempSync(path.join(os.tmpdir(), `myelin-bench-${opts.database}-`));
  const port = await freePort();
  const config = path.join(dir, 'homeserver.yaml');
  const cleanups: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const cleanup = onInterrupt(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  try {
    await run(
      process.execPath,
      [MYELIN_BIN, 'generate-config', '--server-name', 'bench.local', '--config-path', config, '--data-dir', dir, '--port', String(port)],
      { cwd: REPO_ROOT, timeout: 60_000 },
    );
    const configs = [config];
    if (opts.bcryptRounds !== undefined) {
      const extra = path.join(dir, 'bench.yaml');
      writeFileSync(extra, stringifyYaml(benchConfigOverrides(opts.bcryptRounds)));
      configs.push(extra);
    }
    if (opts.database === 'postgres') {
      const pg = opts.pg ?? DEFAULT_PG;
      const db = await createBenchDatabase(pg);
      cleanups.push(db.drop);
      const pgConfig = path.join(dir, 'postgres.yaml');
      writeFileSync(
        pgConfig,
        `database:\n  name: psycopg2\n  args:\n    user: ${pg.user}\n    host: ${pg.host}\n    port: ${pg.port}\n    database: ${db.name}\n`,
      );
      configs.push(pgConfig);
    }
    const logFile = path.join(dir, 'server.log');
    const tSpawn = performance.now();
    const proc = spawnMyelin(configs, logFile);
    cleanups.push(() => stopProcess(proc));

    const baseUrl = `http://127.0.0.1:${port}`;
    const timeout = opts.startTimeoutMs ?? 60_000;
    const startMs = await waitForOk(`${baseUrl}/health`, proc, logFile, tSpawn, timeout);
    await waitForOk(`${baseUrl}/_matrix/client/versions`, proc, logFile, tSpawn, timeout);
    return { baseUrl, pid: proc.pid!, sharedSecret: readSharedSecret(config), dir, logFile, startMs, stop: cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
