/**
 * A worker deployment on PostgreSQL + Redis, started with myelinctl, behind
 * nginx configured by `myelin proxy-config`: routing by role, replication
 * between processes, and refusal of bad deployments.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, runCli } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';
import { hasMallocSettings, LAUNCH_MALLOC_ENV, LAUNCH_NODE_ARGS, launchNodeArgs } from '../../../src/cli/launch-env.js';
import { ReplicationClient } from '../../../src/workers/replication-client.js';
import { makeCluster, type Cluster } from './cluster.js';

const CTL = join(ROOT, 'bin/myelinctl.js');
const SECRET = 'cluster-secret';
const hasNginx = !spawnSync('nginx', ['-v']).error;
if (!hasNginx) console.warn('nginx part skipped: nginx is not installed');

function ctl(args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [CTL, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, MYELIN_LOG_LEVEL: 'warn' }, timeout: 120_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(url: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not up`);
}

describe('worker deployment (postgres + redis, myelinctl, nginx)', () => {
  let c: Cluster;
  let genericPort: number;
  let writerClientPort: number;
  let writerReplPort: number;
  let nginxPort: number;
  let nginx: ChildProcess | undefined;
  const pids: number[] = [];

  beforeAll(async () => {
    genericPort = await freePort();
    writerClientPort = await freePort();
    writerReplPort = await freePort();
    c = await makeCluster('postgres', ({ replPort }) => ({
      redis: { enabled: true, host: '127.0.0.1', port: 6379 },
      worker_replication_secret: SECRET,
      instance_map: { main: { host: '127.0.0.1', port: replPort }, stream_writer: { host: '127.0.0.1', port: writerReplPort } },
      stream_writers: { typing: 'stream_writer' },
      pid_file: join('__DIR__', 'homeserver.pid'),
    }));
    // pid files in the test dir
    const sharedOverrides = c.sharedPaths[1]!;
    writeFileSync(sharedOverrides, readFileSync(sharedOverrides, 'utf8').replace('__DIR__', c.dir));
    c.addWorker('generic1', {
      worker_app: 'synapse.app.generic_worker',
      worker_listeners: [{ type: 'http', port: genericPort, bind_addresses: ['127.0.0.1'], resources: [{ names: ['client', 'federation'] }] }],
      worker_pid_file: join(c.dir, 'generic1.pid'),
    });
    c.addWorker('stream_writer', {
      worker_app: 'synapse.app.generic_worker',
      worker_listeners: [
        { type: 'http', port: writerReplPort, bind_addresses: ['127.0.0.1'], resources: [{ names: ['replication'] }] },
        { type: 'http', port: writerClientPort, bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] },
      ],
      worker_pid_file: join(c.dir, 'stream_writer.pid'),
    });
    // myelinctl takes every shared CONFIG as a positional argument (later ones override earlier ones)
    const r = ctl(['start', '-a', join(c.dir, 'workers'), ...c.sharedPaths]);
    if (r.code !== 0) throw new Error(`myelinctl start failed:\n${r.out}\n${['homeserver', 'generic1', 'stream_writer'].map((n) => { try { return readFileSync(join(c.dir, `${n}.log`), 'utf8'); } catch { return ''; } }).join('\n')}`);
    for (const n of ['homeserver', 'generic1', 'stream_writer']) pids.push(Number(readFileSync(join(c.dir, `${n}.pid`), 'utf8')));
    if (hasNginx) {
      nginxPort = await freePort();
      const gen = await runCli(['proxy-config', '--nginx', ...c.sharedPaths.flatMap((p) => ['-c', p]), '-a', join(c.dir, 'workers'), '--standalone', c.dir, '--listen', `127.0.0.1:${nginxPort}`, '-o', join(c.dir, 'nginx.conf')]);
      if (gen.code !== 0) throw new Error(gen.stderr);
      nginx = spawn('nginx', ['-p', c.dir, '-c', join(c.dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
      await waitFor(`http://127.0.0.1:${nginxPort}/health`);
    }
  }, 180_000);

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx!.once('exit', r));
      nginx.kill('SIGQUIT');
      await exited;
    }
    if (c) {
      ctl(['stop', '-a', join(c.dir, 'workers'), ...c.sharedPaths]);
      await c.dropDb?.().catch(() => {});
      rmSync(c.dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('myelinctl started main and both workers with pid files', () => {
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    expect(existsSync(join(c.dir, 'homeserver.log'))).toBe(true);
  });

  it.runIf(existsSync('/proc/self/environ') && !hasMallocSettings(process.env))('myelinctl starts each process with the fixed malloc thresholds', () => {
    for (const pid of pids) {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      for (const [k, v] of Object.entries(LAUNCH_MALLOC_ENV)) expect(env).toContain(`${k}=${v}`);
      expect(env).toContain('MYELIN_LOG_LEVEL=warn'); // and myelinctl's own environment
    }
  });

  it.runIf(existsSync('/proc/self/cmdline') && launchNodeArgs(process.env).length > 0)('myelinctl starts each process with one V8 background thread', () => {
    for (const pid of pids) {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(cmd.slice(1, 1 + LAUNCH_NODE_ARGS.length)).toEqual([...LAUNCH_NODE_ARGS]);
      expect(cmd).toContain('run');
    }
  });

  it('a generic worker serves its endpoints and 404s the rest', async () => {
    const w = new RawClient(`http://127.0.0.1:${genericPort}`);
    expect((await w.get('/_matrix/client/versions')).status).toBe(200);
    const caps = await w.get('/_matrix/client/v3/capabilities');
    expect(caps.status).toBe(404);
    expect(caps.body.errcode).toBe('M_UNRECOGNIZED');
    // typing belongs to the stream writer, not to generic1
    const typing = await w.request('PUT', '/_matrix/client/v3/rooms/!r:x/typing/@u:x', { typing: true });
    expect(typing.status).toBe(404);
    expect(typing.body.errcode).toBe('M_UNRECOGNIZED');
    // the main process serves everything
    expect((await new RawClient(c.main.baseUrl).get('/_matrix/client/v3/capabilities')).status).toBe(401);
  });

  it('replication reaches the stream writer by instance_map, with the secret', async () => {
    const client = new ReplicationClient({ config: { instance_map: { stream_writer: { host: '127.0.0.1', port: writerReplPort, tls: false } }, worker_replication_secret: SECRET } });
    expect((await client.call('stream_writer', 'ping', {})).instance_name).toBe('stream_writer');
    const bad = new ReplicationClient({ config: { instance_map: { stream_writer: { host: '127.0.0.1', port: writerReplPort, tls: false } }, worker_replication_secret: 'wrong' } });
    await expect(bad.call('stream_writer', 'ping', {})).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it.skipIf(!hasNginx)('nginx routes by the routing table and hides replication', async () => {
    const n = new RawClient(`http://127.0.0.1:${nginxPort}`);
    expect((await n.get('/_matrix/client/versions')).status).toBe(200);
    expect((await n.get('/_matrix/client/v3/capabilities')).status).toBe(401); // main
    const repl = await n.request('POST', '/_synapse/replication/ping/x', {}, { headers: { authorization: `Bearer ${SECRET}` } });
    expect(repl.status).toBe(404);
    expect(repl.body.errcode).toBe('M_UNRECOGNIZED');
    // a user registered through the proxy (main) is known to the generic worker (whoami is in its list)
    const user = await c.main.registerUser();
    const who = await n.withToken(user.accessToken).get('/_matrix/client/v3/account/whoami');
    expect(who.status).toBe(200);
    expect(who.body.user_id).toBe(user.userId);
    const direct = await new RawClient(`http://127.0.0.1:${genericPort}`, user.accessToken).get('/_matrix/client/v3/account/whoami');
    expect(direct.body.user_id).toBe(user.userId);
  });

  it('refuses a worker on SQLite with a clear message', async () => {
    const bad = join(c.dir, 'sqlite-worker.yaml');
    writeFileSync(bad, stringify({ database: { name: 'sqlite3', args: { database: join(c.dir, 'x.db') } }, worker_app: 'synapse.app.generic_worker', worker_name: 'w9' }));
    const r = await runCli(['run', ...c.sharedPaths.flatMap((p) => ['-c', p]), '-c', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/database: workers need PostgreSQL/);
  });

  it('myelinctl stop stops only its processes and removes the pid files', () => {
    const r = ctl(['stop', '-a', join(c.dir, 'workers'), ...c.sharedPaths]);
    expect(r.code, r.out).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    for (const n of ['homeserver', 'generic1', 'stream_writer']) expect(existsSync(join(c.dir, `${n}.pid`))).toBe(false);
    expect(r.out).toMatch(/stopped stream_writer[\s\S]*stopped generic1[\s\S]*stopped homeserver/);
  }, 60_000);
});
