/**
 * The worker shapes of `npm run bench:shapes`: Myelin as a multi-process
 * deployment on a fresh PostgreSQL database and the local Redis, behind a
 * private nginx configured from the routing table (src/workers/nginx.ts, the
 * generator behind `myelin proxy-config --nginx`).
 *
 *   master               client + federation listener, replication listener
 *   generic_worker1/2    client + federation listeners (the generic pools)
 *   event_persister1..N  stream_writers.events (replication listener + a
 *                        client listener: nginx sends each room's event
 *                        sending straight to the room's persister)
 *   stream_writer        typing, to_device, account_data, receipts, presence
 *                        (replication listener + a client listener for nginx)
 *   background_worker    run_background_tasks_on (a replication listener, so
 *                        that its /health can be polled)
 *   follower1..N         (optional, `followers`) generic workers that only
 *                        follow replication (a replication listener for
 *                        /health and a client listener the follower bench
 *                        holds one idle /sync long-poll on, absent from
 *                        instance_map and from nginx): what following the
 *                        streams costs
 *
 * Every process is `node bin/myelin.js run -c homeserver.yaml -c bench.yaml
 * [-c workers/NAME.yaml]` with the node options and environment myelinctl
 * gives its processes (src/cli/launch-env.ts: `--v8-pool-size=1`, the
 * bench's environment plus fixed malloc thresholds):
 * homeserver.yaml from `myelin generate-config`, bench.yaml the overrides
 * planned here (pure: planWorkerDeployment), each with a small connection
 * pool (cp_max 3) since all share one database, but for the two generic
 * workers that serve the clients (cp_max 10, the default, as the monoliths
 * have).
 * The main process starts first (it applies the migrations), then the
 * workers together, then nginx. stop() undoes everything — nginx, workers,
 * main, the database, the directory — also on Ctrl-C (cleanup.ts).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify as stringifyYaml } from 'yaml';
import { launchEnv, launchNodeArgs } from '../cli/launch-env.js';
import { loadDeployment } from '../workers/deployment.js';
import { generateNginxConfig, type PoolName } from '../workers/nginx.js';
import { onInterrupt } from './cleanup.js';
import { childPids } from './procstat.js';
import {
  benchConfigOverrides,
  createBenchDatabase,
  DEFAULT_PG,
  freePort,
  MYELIN_BIN,
  MYELIN_CLI,
  readSharedSecret,
  REPO_ROOT,
  spawnMyelin,
  stopProcess,
  waitForOk,
  type PgTarget,
} from './server.js';
import { sleep } from './util.js';

const run = promisify(execFile);

export const MAIN_NAME = 'master';

/** A prerequisite is missing (nginx, Redis): the shape is skipped, not failed. */
export class ShapeSkip extends Error {}

export interface PlanInput {
  /** Event persisters (stream_writers.events). */
  persisters: number;
  /** At least portsNeeded(persisters) distinct free ports. */
  ports: readonly number[];
  database: { name: string; user: string; host: string; port: number; password?: string };
  redis: { host: string; port: number };
  replicationSecret: string;
  /** The bench's settings (benchConfigOverrides), unless `settings` is given. */
  bcryptRounds?: number;
  /** Settings every process gets, first (the end-to-end suite's test defaults); replaces the bench's. */
  settings?: Record<string, unknown>;
  /** Top-level keys merged last into the shared overrides (a test's own configuration). */
  extra?: Record<string, unknown>;
  /** Connection pool size of each process (default 3). */
  cpMax?: number;
  /**
   * Connection pool size of the generic workers that serve clients (default
   * 10, the default of `cp_max` and what the monoliths run with): they run
   * every /sync, and with 3 connections the fan-out of one message to tens
   * of long-polling users queued on the pool.
   */
  cpMaxClient?: number;
  /** Generic workers that only follow replication (`follower1..N`; default 0). */
  followers?: number;
}

export interface PlannedInstance {
  name: string;
  /** Contents of workers/<name>.yaml (absent for the main process). */
  workerFile?: Record<string, unknown>;
  clientPort?: number;
  replPort?: number;
}

export interface WorkerPlan {
  /** The shared overrides (bench.yaml), loaded after homeserver.yaml by every process. */
  overrides: Record<string, unknown>;
  /** The main process first. */
  instances: PlannedInstance[];
  nginxPort: number;
  /**
   * The proxy's pools (`--pool`): every pool but `event_sending` on the
   * generic workers and the stream writer (the persisters' client listeners
   * serve event sending only; the generator sends it to them by room).
   */
  nginxPools: Partial<Record<PoolName, string[]>>;
}

/** Ports a deployment with `persisters` event persisters (and `followers` followers) needs, nginx included. */
export function portsNeeded(persisters: number, followers = 0): number {
  // master 2, generic workers 2, persisters 2N, stream writer 2, background worker 1, nginx 1, followers 2F
  return 8 + 2 * persisters + 2 * followers;
}

export function followerNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `follower${i + 1}`);
}

export function persisterNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `event_persister${i + 1}`);
}

/** The configuration of the whole deployment (pure). */
export function planWorkerDeployment(p: PlanInput): WorkerPlan {
  if (!Number.isInteger(p.persisters) || p.persisters < 1) throw new Error('a worker deployment needs at least one event persister');
  const followers = p.followers ?? 0;
  if (!Number.isInteger(followers) || followers < 0) throw new Error('followers must be a whole number');
  const needed = portsNeeded(p.persisters, followers);
  if (new Set(p.ports).size < needed) throw new Error(`need ${needed} distinct ports, got ${new Set(p.ports).size}`);
  const ports = [...p.ports];
  const take = () => ports.shift()!;
  const loopback = { type: 'http', bind_addresses: ['127.0.0.1'] };
  const repl = (port: number) => ({ ...loopback, port, resources: [{ names: ['replication'] }] });
  const client = (port: number, names: string[]) => ({ ...loopback, port, x_forwarded: true, resources: [{ names }] });

  const main: PlannedInstance = { name: MAIN_NAME, clientPort: take(), replPort: take() };
  const instances: PlannedInstance[] = [main];
  const worker = (name: string, ports: { clientPort?: number; replPort?: number }, listeners: unknown[]) =>
    instances.push({ name, ...ports, workerFile: { worker_app: 'synapse.app.generic_worker', worker_name: name, worker_listeners: listeners } });
  const dbArgs = (cpMax: number) => ({
    user: p.database.user,
    host: p.database.host,
    port: p.database.port,
    database: p.database.name,
    ...(p.database.password !== undefined ? { password: p.database.password } : {}),
    cp_min: 1,
    cp_max: cpMax,
  });
  for (const name of ['generic_worker1', 'generic_worker2']) {
    const port = take();
    worker(name, { clientPort: port }, [client(port, ['client', 'federation'])]);
    instances.at(-1)!.workerFile!.database = { name: 'psycopg2', args: dbArgs(p.cpMaxClient ?? 10) };
  }
  const persisters = persisterNames(p.persisters);
  for (const name of persisters) {
    const ports = { replPort: take(), clientPort: take() };
    worker(name, ports, [repl(ports.replPort), client(ports.clientPort, ['client'])]);
  }
  const sw = { replPort: take(), clientPort: take() };
  worker('stream_writer', sw, [repl(sw.replPort), client(sw.clientPort, ['client'])]);
  const bg = take();
  worker('background_worker', { replPort: bg }, [repl(bg)]);
  const nginxPort = take();
  // Followers last: their replication listener only answers /health (nobody
  // calls them); nginx does not know their client listener.
  const followerSet = new Set(followerNames(followers));
  for (const name of followerSet) {
    const ports = { replPort: take(), clientPort: take() };
    worker(name, ports, [repl(ports.replPort), client(ports.clientPort, ['client'])]);
  }

  const instanceMap: Record<string, { host: string; port: number }> = { main: { host: '127.0.0.1', port: main.replPort! } };
  for (const i of instances) if (i !== main && i.replPort !== undefined && !followerSet.has(i.name)) instanceMap[i.name] = { host: '127.0.0.1', port: i.replPort };

  if (!p.settings && p.bcryptRounds === undefined) throw new Error('a worker deployment plan needs settings or bcryptRounds');
  const overrides: Record<string, unknown> = {
    ...(p.settings ?? benchConfigOverrides(p.bcryptRounds!)),
    database: {
      name: 'psycopg2',
      // Every process has its own pool on one database: keep them small.
      args: dbArgs(p.cpMax ?? 3),
    },
    redis: { enabled: true, host: p.redis.host, port: p.redis.port },
    worker_replication_secret: p.replicationSecret,
    listeners: [client(main.clientPort!, ['client', 'federation']), repl(main.replPort!)],
    instance_map: instanceMap,
    stream_writers: {
      events: persisters,
      typing: 'stream_writer',
      to_device: 'stream_writer',
      account_data: 'stream_writer',
      receipts: 'stream_writer',
      presence: 'stream_writer',
    },
    run_background_tasks_on: 'background_worker',
    ...(p.extra ?? {}),
  };
  // Client traffic other than event sending stays where it was before the
  // persisters had client listeners: the generic workers (and the stream
  // writer, a generic worker with a client listener, in the client pools).
  const clientPool = ['generic_worker1', 'generic_worker2', 'stream_writer'];
  const federationPool = ['generic_worker1', 'generic_worker2'];
  const nginxPools: Partial<Record<PoolName, string[]>> = {
    sync: clientPool,
    federation: federationPool,
    federation_inbound: federationPool,
    client: clientPool,
    login: clientPool,
    pagination: clientPool,
  };
  return { overrides, instances, nginxPort, nginxPools };
}

/** Why the worker shapes cannot run here, or undefined when they can. */
/**
 * Writes a plan's config files into `dir`: `bench.yaml` (or
 * `overridesName`: the shared overrides, after `base`) and
 * `workers/<name>.yaml` per worker. Returns the
 * shared files, each instance's `-c` list, and the worker files.
 */
export function writePlanFiles(
  plan: WorkerPlan,
  dir: string,
  base: string,
  overridesName = 'bench.yaml',
): { shared: string[]; configsOf: Map<string, string[]>; workerFiles: string[] } {
  const overridePath = path.join(dir, overridesName);
  writeFileSync(overridePath, stringifyYaml(plan.overrides));
  const shared = [base, overridePath];
  const workersDir = path.join(dir, 'workers');
  mkdirSync(workersDir);
  const configsOf = new Map<string, string[]>();
  const workerFiles: string[] = [];
  for (const i of plan.instances) {
    if (!i.workerFile) {
      configsOf.set(i.name, shared);
      continue;
    }
    const f = path.join(workersDir, `${i.name}.yaml`);
    writeFileSync(f, stringifyYaml(i.workerFile));
    configsOf.set(i.name, [...shared, f]);
    workerFiles.push(f);
  }
  return { shared, configsOf, workerFiles };
}

export async function workerShapeUnavailable(redis = redisAddress()): Promise<string | undefined> {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
  } catch {
    return 'nginx is not installed (the worker shapes run behind a private nginx)';
  }
  if (!(await redisPing(redis.host, redis.port))) return `Redis does not answer PING at ${redis.host}:${redis.port} (set MYELIN_BENCH_REDIS=redis://host:port)`;
  return undefined;
}

/** The Redis the worker shapes use: MYELIN_BENCH_REDIS (redis://host:port) or 127.0.0.1:6379. */
export function redisAddress(env: NodeJS.ProcessEnv = process.env): { host: string; port: number } {
  const u = new URL(env.MYELIN_BENCH_REDIS ?? 'redis://127.0.0.1:6379');
  return { host: u.hostname, port: Number(u.port || 6379) };
}

async function redisPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

/** Distinct free ports (freePort() may hand out the same port twice when called back to back). */
async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

export interface DeploymentProcess {
  name: string;
  pid: number;
  /** The process's own client listener (bypassing nginx), when it has one. */
  clientUrl?: string;
}

export interface RunningDeployment {
  /** nginx. */
  baseUrl: string;
  sharedSecret?: string;
  dir: string;
  /** From spawning the main process to the last process answering /health (nginx not included). */
  startMs: number;
  /** Every Myelin process, the main process first. */
  processes: DeploymentProcess[];
  /** nginx's master and worker processes (read now, from /proc). */
  nginxProcesses(): DeploymentProcess[];
  stop(): Promise<void>;
}

export interface WorkerDeploymentOptions {
  persisters: number;
  /** Generic workers that only follow replication (planWorkerDeployment). */
  followers?: number;
  bcryptRounds: number;
  pg?: PgTarget;
  redis?: { host: string; port: number };
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export async function startWorkerDeployment(opts: WorkerDeploymentOptions): Promise<RunningDeployment> {
  if (!existsSync(MYELIN_CLI)) throw new Error(`${path.relative(REPO_ROOT, MYELIN_CLI)} does not exist; run "npm run build" first`);
  const redis = opts.redis ?? redisAddress();
  const why = await workerShapeUnavailable(redis);
  if (why) throw new ShapeSkip(why);
  const log = opts.log ?? (() => {});
  const timeout = opts.startTimeoutMs ?? 90_000;

  const dir = mkdtempSync(path.join(os.tmpdir(), `myelin-bench-workers${opts.persisters}-`));
  // nginx's worker processes drop root (to nobody/www-data) and must reach their temp dirs in here.
  chmodSync(dir, 0o755);
  // MYELIN_BENCH_KEEP=1: the directory (configurations, logs) stays for a look afterwards.
  const keep = !!process.env.MYELIN_BENCH_KEEP && process.env.MYELIN_BENCH_KEEP !== '0';
  const cleanups: (() => Promise<void>)[] = [
    async () => {
      if (keep) log(`kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  ];
  const stop = onInterrupt(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  try {
    const ports = await freePorts(portsNeeded(opts.persisters, opts.followers ?? 0));
    const serverName = `bench-${randomBytes(3).toString('hex')}.local`; // Redis channels are named after it
    const base = path.join(dir, 'homeserver.yaml');
    await run(process.execPath, [MYELIN_BIN, 'generate-config', '--server-name', serverName, '--config-path', base, '--data-dir', dir, '--port', String(ports[0])], {
      cwd: REPO_ROOT,
      timeout: 60_000,
    });
    const pg = opts.pg ?? DEFAULT_PG;
    const db = await createBenchDatabase(pg);
    cleanups.push(db.drop);
    const plan = planWorkerDeployment({
      persisters: opts.persisters,
      ports,
      database: { name: db.name, user: pg.user, host: pg.host, port: pg.port },
      redis,
      replicationSecret: randomBytes(16).toString('hex'),
      bcryptRounds: opts.bcryptRounds,
      followers: opts.followers ?? 0,
    });
    const { shared, configsOf, workerFiles } = writePlanFiles(plan, dir, base);

    // Validate the deployment as a whole and write the proxy config before starting anything.
    const deployment = loadDeployment(shared, workerFiles);
    const nginxConf = path.join(dir, 'nginx.conf');
    writeFileSync(
      nginxConf,
      generateNginxConfig(deployment.shared, deployment.workers, { listen: `127.0.0.1:${plan.nginxPort}`, pools: plan.nginxPools, standalone: { prefix: dir } }),
    );

    // The processes: main first (migrations), then the workers together.
    const procs = new Map<string, ChildProcess>();
    cleanups.push(async () => {
      const workers = [...procs].filter(([n]) => n !== MAIN_NAME).map(([, p]) => p);
      await Promise.all(workers.map((p) => stopProcess(p)));
      const main = procs.get(MAIN_NAME);
      if (main) await stopProcess(main);
    });
    const tSpawn = performance.now();
    const startOne = async (i: PlannedInstance): Promise<number> => {
      const logFile = path.join(dir, `${i.name}.log`);
      // Started as myelinctl starts them (src/cli/launch-env.ts).
      const p = spawnMyelin(configsOf.get(i.name)!, logFile, { env: launchEnv(), nodeArgs: launchNodeArgs() });
      procs.set(i.name, p);
      return waitForOk(`http://127.0.0.1:${i.clientPort ?? i.replPort}/health`, p, logFile, tSpawn, timeout);
    };
    const [main, ...workers] = plan.instances;
    await startOne(main!);
    log(`master up after ${Math.round(performance.now() - tSpawn)} ms; starting ${workers.length} workers`);
    const startMs = Math.max(...(await Promise.all(workers.map(startOne))));

    // nginx, private: its own prefix, error log, pid file; in the foreground so that we own it.
    const nginxOut: string[] = [];
    const nginx = spawn('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', nginxConf, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stdout!.on('data', (d) => nginxOut.push(String(d)));
    nginx.stderr!.on('data', (d) => nginxOut.push(String(d)));
    cleanups.push(() => stopNginx(nginx));
    const baseUrl = `http://127.0.0.1:${plan.nginxPort}`;
    try {
      await waitForOk(`${baseUrl}/_matrix/client/versions`, nginx, path.join(dir, 'error.log'), performance.now(), 15_000);
    } catch (e) {
      throw new Error(`nginx did not come up: ${(e as Error).message}\n${nginxOut.join('')}`);
    }

    const processes = plan.instances.map((i) => ({
      name: i.name,
      pid: procs.get(i.name)!.pid!,
      ...(i.clientPort !== undefined ? { clientUrl: `http://127.0.0.1:${i.clientPort}` } : {}),
    }));
    return {
      baseUrl,
      sharedSecret: readSharedSecret(base),
      dir,
      startMs,
      processes,
      nginxProcesses: () =>
        nginx.pid && nginx.exitCode === null ? [{ name: 'nginx', pid: nginx.pid }, ...childPids(nginx.pid).map((pid) => ({ name: 'nginx-worker', pid }))] : [],
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** SIGQUIT (graceful), SIGKILL after 10 s. */
async function stopNginx(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((res) => p.once('exit', () => res()));
  p.kill('SIGQUIT');
  if ((await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) === false) {
    p.kill('SIGKILL');
    await exited;
  }
}
