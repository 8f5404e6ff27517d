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
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
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

/** Read `registration_shared_secret` from a homeserver YAML file (undefined if absent). */
export function readSharedSecret(configPath: string): string | undefined {
  const doc = parseYaml(readFileSync(configPath, 'utf8')) as Record<string, unknown> | null;
  const s = doc?.registration_shared_secret;
  return typeof s === 'string' && s ? s : undefined;
}

function tail(file: string, lines = 30): string {
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
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  let child: ChildProcess | undefined;
  try {
    await run(
      process.execPath,
      [MYELIN_BIN, 'generate-config', '--server-name', 'bench.local', '--config-path', config, '--data-dir', dir, '--port', String(port)],
      { cwd: REPO_ROOT, timeout: 60_000 },
    );
    const configs = ['-c', config];
    if (opts.bcryptRounds !== undefined) {
      const extra = path.join(dir, 'bench.yaml');
      // And rate limits out of the way: the figures measure the server, not its limiter
      // (keys-query/keys-claim log in many devices of one user; send is meant to flood).
      const rc = '{per_second: 100000, burst_count: 100000}';
      writeFileSync(
        extra,
        `bcrypt_rounds: ${opts.bcryptRounds}\nrc_message: ${rc}\nrc_registration: ${rc}\n` +
          `rc_login:\n  address: ${rc}\n  account: ${rc}\n  failed_attempts: ${rc}\n`,
      );
      configs.push('-c', extra);
    }
    if (opts.database === 'postgres') {
      const pg = opts.pg ?? DEFAULT_PG;
      const db = `myelin_bench_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
      await psql(pg, `CREATE DATABASE "${db}"`);
      cleanups.push(() => psql(pg, `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`));
      const pgConfig = path.join(dir, 'postgres.yaml');
      writeFileSync(
        pgConfig,
        `database:\n  name: psycopg2\n  args:\n    user: ${pg.user}\n    host: ${pg.host}\n    port: ${pg.port}\n    database: ${db}\n`,
      );
      configs.push('-c', pgConfig);
    }
    const logFile = path.join(dir, 'server.log');
    const fd = openSync(logFile, 'a');
    const tSpawn = performance.now();
    child = spawn(process.execPath, [MYELIN_BIN, 'run', ...configs], { cwd: REPO_ROOT, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const proc = child;
    let exited: string | undefined;
    proc.once('exit', (code, sig) => (exited = `exited with ${sig ?? code}`));
    cleanups.push(async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const done = new Promise((r) => proc.once('exit', r));
      if ((await Promise.race([done.then(() => true), sleep(10_000).then(() => false)])) === false) {
        proc.kill('SIGKILL');
        await done;
      }
    });

    const baseUrl = `http://127.0.0.1:${port}`;
    let startMs = NaN;
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (exited) throw new Error(`myelin ${exited} before answering; log tail:\n${tail(logFile)}`);
      try {
        const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) {
          startMs = performance.now() - tSpawn;
          const v = await fetch(`${baseUrl}/_matrix/client/versions`, { signal: AbortSignal.timeout(2000) });
          if (v.ok) break;
        }
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`myelin did not answer on ${baseUrl} within the start timeout; log tail:\n${tail(logFile)}`);
      await sleep(10);
    }
    return { baseUrl, pid: proc.pid!, sharedSecret: readSharedSecret(config), dir, logFile, startMs, stop: cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
