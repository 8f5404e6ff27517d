/**
 * Starts real Myelin processes for end-to-end tests, in each deployment shape.
 *
 * Shapes under test come from MYELIN_TEST_SHAPES (comma separated; default
 * "sqlite,postgres", plus "workers" when nginx and Redis are available).
 * PostgreSQL comes from MYELIN_TEST_PG (default
 * postgres://postgres@127.0.0.1:5432); each server gets a database of its own,
 * dropped when it stops. The workers shape (test/helpers/worker-deployment.ts)
 * is a multi-process deployment behind nginx; Redis from MYELIN_TEST_REDIS
 * (default redis://127.0.0.1:6379).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { describe, beforeAll, afterAll } from 'vitest';

export type Shape = 'sqlite' | 'postgres' | 'workers';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/myelin.js');

let workersPrereq: string | null | undefined;
/** Why the workers shape cannot run here (nginx or Redis missing), or null when it can. */
export function workersShapeUnavailable(): string | null {
  if (workersPrereq === undefined) {
    // Checked once, synchronously: describeShapes runs at collection time.
    const hasNginx = !spawnSync('nginx', ['-v'], { stdio: 'ignore' }).error;
    const u = new URL(process.env.MYELIN_TEST_REDIS ?? 'redis://127.0.0.1:6379');
    const script = `const s=require('net').connect(${Number(u.port || 6379)},${JSON.stringify(u.hostname)});s.setTimeout(1500);s.on('connect',()=>s.write('PING\\r\\n'));s.on('data',d=>process.exit(String(d).startsWith('+PONG')?0:1));s.on('error',()=>process.exit(1));s.on('timeout',()=>process.exit(1));`;
    const hasRedis = spawnSync(process.execPath, ['-e', script], { timeout: 3000, stdio: 'ignore' }).status === 0;
    workersPrereq = !hasNginx ? 'nginx is not installed (the workers shape runs behind a real nginx)' : !hasRedis ? `Redis does not answer at ${u.host}` : null;
  }
  return workersPrereq;
}

export function shapesUnderTest(): Shape[] {
  const env = process.env.MYELIN_TEST_SHAPES ?? (workersShapeUnavailable() === null ? 'sqlite,postgres,workers' : 'sqlite,postgres');
  return env.split(',').map((s) => s.trim()).filter(Boolean) as Shape[];
}

export function pgUrl(): string {
  return process.env.MYELIN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as any).port as number;
      s.close(() => res(port));
    });
  });
}

/** Creates a fresh PostgreSQL database; returns its name and a dropper. */
export async function createPgDatabase(prefix = 'myelin_test'): Promise<{ name: string; drop: () => Promise<void>; args: Record<string, unknown> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(pgUrl());
  return {
    name,
    args: { user: decodeURIComponent(u.username || 'postgres'), host: u.hostname, port: Number(u.port || 5432), database: name, cp_min: 1, cp_max: 5, ...(u.password ? { password: decodeURIComponent(u.password) } : {}) },
    drop: async () => {
      const c = new pg.Client({ connectionString: pgUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface StartOptions {
  shape?: Shape;
  serverName?: string;
  /** Top-level keys merged over the test defaults. */
  config?: Record<string, unknown>;
}

export interface RegisteredUser {
  userId: string;
  accessToken: string;
  deviceId: string;
  password: string;
  localpart: string;
}

export class TestServer {
  proc: ChildProcess | undefined;
  output = '';
  constructor(
    readonly shape: Shape,
    readonly serverName: string,
    readonly port: number,
    readonly dir: string,
    /** The generated homeserver.yaml and the test's override file. */
    readonly configPaths: string[],
    readonly sharedSecret: string,
    private readonly dropDb?: () => Promise<void>,
  ) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn(process.execPath, [BIN, 'run', ...this.configPaths.flatMap((p) => ['-c', p])], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MYELIN_LOG_LEVEL: process.env.MYELIN_LOG_LEVEL ?? 'warn' },
    });
    this.proc = proc;
    proc.stdout!.on('data', (d) => (this.output += d.toString()));
    proc.stderr!.on('data', (d) => (this.output += d.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`server exited (${proc.exitCode}):\n${this.output}`);
      try {
        const r = await fetch(`${this.baseUrl}/health`);
        if (r.ok) return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`server did not start:\n${this.output}`);
  }

  /** Graceful stop (SIGTERM). */
  async stopProcess(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((res) => {
      p.once('exit', () => res());
      p.kill(signal);
    });
  }

  async restart(): Promise<void> {
    await this.stopProcess();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    if (this.dropDb) await this.dropDb().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Registers a user with the shared-secret admin API (as Synapse's tooling does). */
  async registerUser(localpart?: string, opts: { admin?: boolean; password?: string } = {}): Promise<RegisteredUser> {
    const name = localpart ?? `user${randomBytes(4).toString('hex')}`;
    const password = opts.password ?? `pw-${randomBytes(6).toString('hex')}`;
    const url = `${this.baseUrl}/_synapse/admin/v1/register`;
    const { nonce } = (await (await fetch(url)).json()) as { nonce: string };
    const { createHmac } = await import('node:crypto');
    const mac = createHmac('sha1', this.sharedSecret)
      .update(`${nonce}\0${name}\0${password}\0${opts.admin ? 'admin' : 'notadmin'}`)
      .digest('hex');
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce, username: name, password, admin: !!opts.admin, mac }),
    });
    const body = (await res.json()) as any;
    if (!res.ok) throw new Error(`register ${name} failed: ${JSON.stringify(body)}`);
    return { userId: body.user_id, accessToken: body.access_token, deviceId: body.device_id, password, localpart: name };
  }
}

/** Test defaults: open registration, cheap bcrypt, generous rate limits. */
export function testConfigDefaults(): Record<string, unknown> {
  return {
    enable_registration: true,
    enable_registration_without_verification: true,
    bcrypt_rounds: 4,
    rc_login: {
      address: { per_second: 1000, burst_count: 1000 },
      account: { per_second: 1000, burst_count: 1000 },
      failed_attempts: { per_second: 1000, burst_count: 1000 },
    },
    rc_registration: { per_second: 1000, burst_count: 1000 },
    rc_message: { per_second: 10000, burst_count: 10000 },
    log_level: 'warn',
  };
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const shape = opts.shape ?? 'sqlite';
  if (shape === 'workers') {
    // Dynamic import: worker-deployment.ts extends TestServer from this module.
    const { startWorkerDeployment } = await import('./worker-deployment.js');
    return startWorkerDeployment(opts);
  }
  const serverName = opts.serverName ?? `test-${randomBytes(3).toString('hex')}.local`;
  const dir = mkdtempSync(join(tmpdir(), 'myelin-test-'));
  const port = await freePort();
  const base = join(dir, 'homeserver.yaml');
  await runCli(['generate-config', '--server-name', serverName, '--config-path', base, '--data-dir', dir, '--port', String(port)]);
  const overrides: Record<string, unknown> = { ...testConfigDefaults(), ...(opts.config ?? {}) };
  let drop: (() => Promise<void>) | undefined;
  if (shape === 'postgres') {
    const db = await createPgDatabase();
    overrides.database = { name: 'psycopg2', args: db.args };
    drop = db.drop;
  }
  // Later files override earlier ones, as with Synapse's repeated --config-path.
  const overridePath = join(dir, 'test-overrides.yaml');
  writeFileSync(overridePath, stringify(overrides));
  const secret = /registration_shared_secret:\s*"([^"]+)"/.exec(readFileSync(base, 'utf8'))![1]!;
  const server = new TestServer(shape, serverName, port, dir, [base, overridePath], secret, drop);
  try {
    await server.start();
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('build first: npm run build');
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Worker deployments are shared by the describe blocks of one test file that
 * ask for the same options (7 processes and an nginx are worth reusing), and
 * stopped once the file is done. Test files run in processes of their own, so
 * this map is per file.
 */
const sharedDeployments = new Map<string, Promise<TestServer>>();
let sharedCleanupRegistered = false;

async function stopShared(except?: string): Promise<void> {
  const victims = [...sharedDeployments].filter(([k]) => k !== except);
  for (const [k] of victims) sharedDeployments.delete(k);
  await Promise.all(victims.map(([, p]) => p.then((s) => s.stop(), () => {})));
}

/** Must be called at collection time (outside any hook): registers the file-level cleanup. */
function registerSharedCleanup(): void {
  if (sharedCleanupRegistered) return;
  sharedCleanupRegistered = true;
  afterAll(() => stopShared(), 120_000);
}

function sharedWorkerDeployment(opts: Omit<StartOptions, 'shape'>): Promise<TestServer> {
  const key = JSON.stringify(opts);
  let p = sharedDeployments.get(key);
  if (!p) {
    // Describe blocks run one after another: a block with other options no
    // longer needs the previous deployment (7 processes, ~35 database connections).
    p = stopShared(key).then(() => startServer({ ...opts, shape: 'workers' }));
    sharedDeployments.set(key, p);
    p.catch(() => sharedDeployments.delete(key));
  }
  return p;
}

/**
 * Runs a suite once per shape under test, each against its own server (in
 * the workers shape: one deployment per test file and options).
 * `get()` returns the server of the current shape.
 */
export function describeShapes(name: string, fn: (get: () => TestServer, shape: Shape) => void, opts: Omit<StartOptions, 'shape'> = {}): void {
  for (const shape of shapesUnderTest()) {
    if (shape === 'workers' && workersShapeUnavailable() !== null) {
      console.warn(`workers shape skipped for "${name}": ${workersShapeUnavailable()}`);
      describe.skip(`${name} [${shape}] (skipped: ${workersShapeUnavailable()})`, () => fn(() => { throw new Error('not started'); }, shape));
      continue;
    }
    if (shape === 'workers') registerSharedCleanup();
    const shared = shape === 'workers' ? () => sharedWorkerDeployment(opts) : undefined;
    describe(`${name} [${shape}]`, () => {
      let server: TestServer | undefined;
      beforeAll(async () => {
        server = shared ? await shared() : await startServer({ ...opts, shape });
      }, shape === 'workers' ? 180_000 : undefined);
      afterAll(async () => {
        if (!shared) await server?.stop();
      });
      fn(() => {
        if (!server) throw new Error('server not started');
        return server;
      }, shape);
    });
  }
}
