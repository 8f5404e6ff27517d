/**
 * A real nginx, configured by the generator, sends each room's event-sending
 * requests straight to the event persister that owns the room (roomShardFor):
 * the persisters' client listeners are tiny HTTP servers answering with
 * their worker name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../src/bench/server.js';
import { configSchema } from '../../../src/config/schema.js';
import { generateNginxConfig } from '../../../src/workers/nginx.js';
import { roomShardFor } from '../../../src/workers/role.js';

const nginx = spawnSync('nginx', ['-v']).error ? undefined : 'nginx';
if (!nginx) console.warn('nginx room-routing test skipped: nginx is not installed');

/** An HTTP server answering every request with `{name, url}`. */
async function nameServer(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, url: req.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

const httpListener = (port: number, names: string[]) => ({ type: 'http', port, bind_addresses: ['127.0.0.1'], resources: [{ names }] });

/** A room id as a client may write it in the path: raw, `:` encoded, everything encoded, lower-case hex. */
function inPath(roomId: string, i: number): string {
  switch (i % 4) {
    case 0:
      return roomId;
    case 1:
      return encodeURIComponent(roomId); // `!` stays, `:` becomes %3A
    case 2:
      return roomId.replace('!', '%21').replace(':', '%3A');
    default:
      return roomId.replace('!', '%21').replace(':', '%3a');
  }
}

describe.skipIf(!nginx)('nginx routes event sending to the room persister', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  for (const n of [2, 3]) {
    it(`${n} persisters: every room's send lands on roomShardFor(room, writers)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `myelin-nginx-R-${n}-`));
      chmodSync(dir, 0o755); // nginx's worker processes may run as another user
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      // Declared in an order other than their names', to see that the writers' order counts.
      const persisters = Array.from({ length: n }, (_, i) => `event_persister${n - i}`);
      const servers = new Map<string, number>();
      for (const name of ['master', 'generic_worker1', ...persisters]) {
        const s = await nameServer(name);
        cleanups.push(() => new Promise<void>((r) => s.server.close(() => r())));
        servers.set(name, s.port);
      }
      const replPort = 1; // never contacted: replication is not proxied
      const sharedRaw = {
        server_name: 'example.org',
        signing_key_path: join(dir, 'k.key'),
        database: { name: 'psycopg2', args: { user: 'myelin', database: 'myelin', host: '127.0.0.1' } },
        redis: { enabled: true },
        listeners: [httpListener(servers.get('master')!, ['client', 'federation']), httpListener(9093, ['replication'])],
        instance_map: { main: { host: '127.0.0.1', port: 9093 }, ...Object.fromEntries(persisters.map((p) => [p, { host: '127.0.0.1', port: replPort }])) },
        stream_writers: { events: persisters },
      };
      const shared = configSchema.parse(sharedRaw);
      const worker = (name: string, listeners: unknown[]) => ({
        path: `${name}.yaml`,
        config: configSchema.parse({ ...sharedRaw, worker_app: 'synapse.app.generic_worker', worker_name: name, worker_listeners: listeners }),
      });
      const workers = [
        worker('generic_worker1', [httpListener(servers.get('generic_worker1')!, ['client', 'federation'])]),
        // Worker files in name order; the upstream follows stream_writers.events.
        ...[...persisters].sort().map((p) => worker(p, [httpListener(replPort, ['replication']), httpListener(servers.get(p)!, ['client'])])),
      ];
      const port = await freePort();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, generateNginxConfig(shared, workers, { listen: `127.0.0.1:${port}`, standalone: { prefix: dir } }));

      const proc: ChildProcess = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
      cleanups.push(
        () =>
          new Promise<void>((r) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return r();
            proc.once('exit', () => r());
            proc.kill('SIGQUIT');
          }),
      );
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 15_000;
      for (;;) {
        const ok = await fetch(`${base}/_matrix/client/versions`).then((r) => r.ok, () => false);
        if (ok) break;
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start:\n${readFileSync(join(dir, 'error.log'), 'utf8')}`);
        await new Promise((r) => setTimeout(r, 50));
      }

      const seen = new Map<string, number>();
      for (let i = 0; i < 100; i++) {
        // Room ids of room versions before 12 (`!opaque:server`) and of version 12 (`!` + 43 base64url characters).
        const roomId = i % 3 === 2 ? `!${randomBytes(32).toString('base64url')}` : `!${randomBytes(12).toString('base64url')}:example.org`;
        const path = i % 10 === 9 ? `/_matrix/client/r0/rooms/${inPath(roomId, i)}/state/m.room.topic/` : `/_matrix/client/v3/rooms/${inPath(roomId, i)}/send/m.room.message/t${i}`;
        const r = await fetch(`${base}${path}`, { method: 'PUT', body: '{"msgtype":"m.text","body":"hi"}' });
        expect(r.status).toBe(200);
        const body = (await r.json()) as { name: string };
        expect(body.name, `${roomId} as ${path}`).toBe(roomShardFor(roomId, persisters));
        seen.set(body.name, (seen.get(body.name) ?? 0) + 1);
      }
      // Every persister got some rooms; nothing went to the generic worker or the main process.
      expect([...seen.keys()].sort()).toEqual([...persisters].sort());
      // A request without a room id in the path still reaches a persister (the hash of the URI).
      const other = (await (await fetch(`${base}/_matrix/client/v3/join/%23alias%3Aexample.org`, { method: 'POST', body: '{}' })).json()) as { name: string };
      expect(other.name).toBe(roomShardFor('#alias:example.org', persisters));
    });
  }
});
