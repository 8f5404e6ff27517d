/**
 * The `workers` shape of the end-to-end suite (DESIGN.md §1, §9): a
 * multi-process deployment on a fresh PostgreSQL database and the local
 * Redis, behind a private nginx configured by `myelin proxy-config --nginx`.
 *
 *   master              client + federation listener, replication listener
 *   generic_worker1/2   client + federation listeners (the generic pools)
 *   event_persister1/2  stream_writers.events (replication listener + a
 *                       client listener: nginx sends event sending there, by room)
 *   stream_writer       typing, to_device, account_data, receipts, presence
 *                       (replication listener + a client listener for nginx)
 *   background_worker   run_background_tasks_on (a replication listener, only
 *                       so that the harness can see /health)
 *
 * The deployment is the bench's (planWorkerDeployment in
 * src/bench/worker-shape.ts, with two persisters and the test settings).
 * Each process is spawned here as `myelin run -c homeserver.yaml -c
 * test-overrides.yaml [-c workers/NAME.yaml]`, its output captured (and kept
 * in `<dir>/<name>.log`), so that a test can stop, kill or restart any one of
 * them. `baseUrl` is nginx; `instanceUrl(name)` reaches a process's own client
 * listener, bypassing nginx.
 *
 * Sharing Redis between concurrent test servers is safe: the pub/sub channels
 * are named after server_name, unique per deployment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { planWorkerDeployment, portsNeeded, writePlanFiles, type WorkerPlan } from '../../src/bench/worker-shape.js';
import { BIN, createPgDatabase, freePort, ROOT, runCli, testConfigDefaults, TestServer, type StartOptions } from './homeserver.js';

export const MAIN = 'master';
export const GENERIC_WORKERS = ['generic_worker1', 'generic_worker2'] as const;
export const EVENT_PERSISTERS = ['event_persister1', 'event_persister2'] as const;
export const STREAM_WRITER = 'stream_writer';
export const BACKGROUND_WORKER = 'background_worker';
export const INSTANCES = [MAIN, ...GENERIC_WORKERS, ...EVENT_PERSISTERS, STREAM_WRITER, BACKGROUND_WORKER] as const;
export type InstanceName = (typeof INSTANCES)[number];

export function redisAddress(): { host: string; port: number } {
  const u = new URL(process.env.MYELIN_TEST_REDIS ?? 'redis://127.0.0.1:6379');
  return { host: u.hostname, port: Number(u.port || 6379) };
}

interface Instance {
  name: InstanceName;
  /** Config files: the shared ones, then its worker file (none for the main process). */
  configs: string[];
  /** Its client listener (main, generic workers, event persisters, stream writer). */
  clientPort?: number;
  /** Its replication listener. */
  replPort?: number;
  proc?: ChildProcess;
  log?: WriteStream;
}

/**
 * Safety net: whatever happens to the test process (a hook timeout, vitest
 * tearing the worker down), its deployments' processes die with it.
 */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(p: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    const killAll = () => {
      for (const c of liveChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    };
    process.once('exit', killAll);
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.once(sig, () => {
        killAll();
        process.exit(128 + (sig === 'SIGTERM' ? 15 : 2));
      });
    }
  }
  liveChildren.add(p);
  p.once('exit', () => liveChildren.delete(p));
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export class WorkerDeployment extends TestServer {
  readonly instances = new Map<InstanceName, Instance>();
  nginx: ChildProcess | undefined;
  nginxOutput = '';
  /** Processes that died without being asked to (their messages). */
  readonly unexpectedExits: string[] = [];
  private readonly expectedExits = new Set<ChildProcess>();

  constructor(
    serverName: string,
    nginxPort: number,
    dir: string,
    configPaths: string[],
    sharedSecret: string,
    instances: Instance[],
    private readonly dropDatabase: () => Promise<void>,
    /** The plan's proxy pools (`--pool`). */
    private readonly nginxPools: WorkerPlan['nginxPools'] = {},
  ) {
    super('workers', serverName, nginxPort, dir, configPaths, sharedSecret);
    for (const i of instances) this.instances.set(i.name, i);
  }

  private inst(name: string): Instance {
    const i = this.instances.get(name as InstanceName);
    if (!i) throw new Error(`no instance ${name} (instances: ${[...this.instances.keys()].join(', ')})`);
    return i;
  }

  /** The process's own client listener, bypassing nginx (main, generic workers, event persisters, stream writer). */
  instanceUrl(name: InstanceName): string {
    const port = this.inst(name).clientPort;
    if (!port) throw new Error(`${name} has no client listener`);
    return `http://127.0.0.1:${port}`;
  }

  /** The process's replication listener (never proxied). */
  replicationUrl(name: InstanceName): string {
    const port = this.inst(name).replPort;
    if (!port) throw new Error(`${name} has no replication listener`);
    return `http://127.0.0.1:${port}`;
  }

  pid(name: InstanceName): number | undefined {
    return this.inst(name).proc?.pid;
  }

  isRunning(name: InstanceName): boolean {
    const p = this.inst(name).proc;
    return !!p && p.exitCode === null && p.signalCode === null;
  }

  private healthUrl(i: Instance): string {
    return `http://127.0.0.1:${i.clientPort ?? i.replPort}/health`;
  }

  /** Starts one process and waits for its /health. */
  async startInstance(name: InstanceName, timeoutMs = 30_000): Promise<void> {
    const i = this.inst(name);
    if (i.proc && i.proc.exitCode === null && i.proc.signalCode === null) throw new Error(`${name} is already running`);
    const log = createWriteStream(join(this.dir, `${name}.log`), { flags: 'a' });
    i.log = log;
    const proc = spawn(process.execPath, [BIN, 'run', ...i.configs.flatMap((p) => ['-c', p])], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MYELIN_LOG_LEVEL: process.env.MYELIN_LOG_LEVEL ?? 'warn' },
    });
    i.proc = proc;
    track(proc);
    const capture = (d: Buffer) => {
      const text = d.toString();
      log.write(text);
      this.output += text
        .split('\n')
        .map((l, k, all) => (k === all.length - 1 && l === '' ? '' : `[${name}] ${l}`))
        .join('\n');
    };
    proc.stdout!.on('data', capture);
    proc.stderr!.on('data', capture);
    proc.once('exit', (code, signal) => {
      if (this.expectedExits.delete(proc)) return;
      // A crash is worth shouting about: the tests that follow fail with 502s otherwise.
      const msg = `${name} (pid ${proc.pid}) exited unexpectedly (${code ?? signal})`;
      this.output += `[${name}] ${msg}\n`;
      this.unexpectedExits.push(msg);
      console.error(`[${this.serverName}] ${msg}; last output:\n${this.logOf(name).slice(-3000)}`);
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}):\n${this.logOf(name)}`);
      }
      try {
        const r = await fetch(this.healthUrl(i), { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
      } catch {
        /* not up yet */
      }
      await sleep(50);
    }
    throw new Error(`${name} did not answer /health within ${timeoutMs / 1000}s:\n${this.logOf(name)}`);
  }

  /** Everything the process wrote, from its log file (all its runs). */
  logOf(name: InstanceName): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Sends a signal to one process and waits until it has exited (SIGTERM: graceful; SIGKILL: crash). */
  async killInstance(name: InstanceName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.inst(name).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((res) => p.once('exit', () => res()));
    this.expectedExits.add(p);
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  async stopInstance(name: InstanceName): Promise<void> {
    await this.killInstance(name, 'SIGTERM');
  }

  async restartInstance(name: InstanceName): Promise<void> {
    await this.stopInstance(name);
    await this.startInstance(name);
  }

  /** The main process first (it applies the migrations), then every worker in parallel, then nginx. */
  override async start(): Promise<void> {
    await this.startInstance(MAIN);
    await Promise.all(INSTANCES.filter((n) => n !== MAIN).map((n) => this.startInstance(n)));
    await this.startNginx();
  }

  /** Workers first, then the main process (nginx stays up: its upstreams do not move). */
  override async stopProcess(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all(INSTANCES.filter((n) => n !== MAIN).map((n) => this.killInstance(n, signal)));
    await this.killInstance(MAIN, signal);
  }

  override async restart(): Promise<void> {
    await this.stopProcess();
    await this.start();
  }

  override async stop(): Promise<void> {
    await this.stopNginx();
    await this.stopProcess();
    for (const i of this.instances.values()) i.log?.end();
    await this.dropDatabase().catch(() => {});
    if (!process.env.MYELIN_TEST_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Generates nginx.conf with `myelin proxy-config --nginx` and runs a private nginx on `port`. */
  async startNginx(): Promise<void> {
    if (this.nginx && this.nginx.exitCode === null && this.nginx.signalCode === null) return;
    const conf = join(this.dir, 'nginx.conf');
    const gen = await runCli([
      'proxy-config',
      '--nginx',
      ...this.configPaths.flatMap((p) => ['-c', p]),
      '-a',
      join(this.dir, 'workers'),
      '--standalone',
      this.dir,
      '--listen',
      `127.0.0.1:${this.port}`,
      ...Object.entries(this.nginxPools).flatMap(([pool, names]) => ['--pool', `${pool}=${names.join(',')}`]),
      '-o',
      conf,
    ]);
    if (gen.code !== 0) throw new Error(`myelin proxy-config failed:\n${gen.stderr}`);
    // -e: the error log before nginx.conf is read (else the distribution's /var/log/nginx/error.log).
    const proc = spawn('nginx', ['-p', this.dir, '-e', join(this.dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.nginx = proc;
    track(proc);
    proc.stdout!.on('data', (d) => (this.nginxOutput += d));
    proc.stderr!.on('data', (d) => (this.nginxOutput += d));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`nginx exited (${proc.exitCode}):\n${this.nginxOutput}\n${this.nginxErrorLog()}`);
      try {
        const r = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
      } catch {
        /* not up yet */
      }
      await sleep(50);
    }
    throw new Error(`nginx did not come up on ${this.baseUrl}:\n${this.nginxOutput}\n${this.nginxErrorLog()}`);
  }

  async stopNginx(): Promise<void> {
    const p = this.nginx;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((res) => p.once('exit', () => res()));
    p.kill('SIGQUIT');
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  nginxErrorLog(): string {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** nginx's access log. */
  accessLog(): string {
    try {
      return readFileSync(join(this.dir, 'access.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

/** Distinct free ports (freePort() may hand out the same port twice when called back to back). */
async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

export async function startWorkerDeployment(opts: StartOptions = {}): Promise<WorkerDeployment> {
  const serverName = opts.serverName ?? `test-${randomBytes(3).toString('hex')}.local`;
  const dir = mkdtempSync(join(tmpdir(), 'myelin-workers-'));
  // nginx's worker processes drop root (to nobody/www-data) and must reach their temp dirs in here.
  chmodSync(dir, 0o755);
  const ports = await freePorts(portsNeeded(EVENT_PERSISTERS.length));
  const base = join(dir, 'homeserver.yaml');
  const gen = await runCli(['generate-config', '--server-name', serverName, '--config-path', base, '--data-dir', dir, '--port', String(ports[0])]);
  if (gen.code !== 0) throw new Error(`generate-config failed:\n${gen.stderr}`);
  const db = await createPgDatabase('myelin_workers');
  const a = db.args as { user: string; host: string; port: number; password?: string };
  // The bench's deployment (src/bench/worker-shape.ts), with the test defaults.
  const plan = planWorkerDeployment({
    persisters: EVENT_PERSISTERS.length,
    ports,
    database: { name: db.name, user: a.user, host: a.host, port: a.port, ...(a.password !== undefined ? { password: a.password } : {}) },
    redis: redisAddress(),
    replicationSecret: randomBytes(16).toString('hex'),
    settings: testConfigDefaults(),
    extra: opts.config,
    // 7 processes share one database: small pools (PostgreSQL's default max_connections is 100).
    cpMax: 3,
    cpMaxClient: 3,
  });
  const { shared, configsOf } = writePlanFiles(plan, dir, base, 'test-overrides.yaml');
  const secret = /registration_shared_secret:\s*"([^"]+)"/.exec(readFileSync(base, 'utf8'))![1]!;
  const instances: Instance[] = plan.instances.map((i) => {
    if (!(INSTANCES as readonly string[]).includes(i.name)) throw new Error(`unexpected instance ${i.name} in the deployment plan`);
    return { name: i.name as InstanceName, configs: configsOf.get(i.name)!, clientPort: i.clientPort, replPort: i.replPort };
  });

  const d = new WorkerDeployment(serverName, plan.nginxPort, dir, shared, secret, instances, db.drop, plan.nginxPools);
  try {
    await d.start();
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}
