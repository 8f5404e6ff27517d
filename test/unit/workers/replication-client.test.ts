/**
 * The replication client's built-in HTTP path against a plain node:http
 * server: the request it makes (path, secret, body), IPv6 hosts from
 * instance_map, retries under the same transaction id and Matrix errors.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicationClient } from '../../../src/workers/replication-client.js';

interface Seen {
  method?: string;
  url?: string;
  auth?: string;
  body: string;
}

function startServer(host: string, answer: (seen: Seen, n: number) => { status: number; body: string }) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s = { method: req.method, url: req.url, auth: req.headers.authorization, body };
      seen.push(s);
      const a = answer(s, seen.length);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    });
  });
  return new Promise<{ server: http.Server; port: number; seen: Seen[] }>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve({ server, port: (server.address() as AddressInfo).port, seen }));
  });
}

describe('ReplicationClient over node:http', () => {
  const servers: http.Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  let v4: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    // Fails twice with 503, then answers: the retries must carry the same transaction id.
    v4 = await startServer('127.0.0.1', (s, n) => {
      if (s.url?.includes('/flaky/') && n <= 2) return { status: 503, body: '{}' };
      if (s.url?.includes('/refuse/')) return { status: 403, body: JSON.stringify({ errcode: 'M_FORBIDDEN', error: 'no', extra: 1 }) };
      return { status: 200, body: JSON.stringify({ echo: JSON.parse(s.body) }) };
    });
    servers.push(v4.server);
  });

  it('posts the JSON body to /_synapse/replication/<endpoint>/<txnId> with the secret', async () => {
    const client = new ReplicationClient({ config: { instance_map: { persister: { host: '127.0.0.1', port: v4.port, tls: false } }, worker_replication_secret: 's3cret' } });
    const out = await client.call<{ echo: unknown }>('persister', 'rooms_write', { roomId: '!r:x', n: 1 }, 'txn/1');
    expect(out.echo).toEqual({ roomId: '!r:x', n: 1 });
    const last = v4.seen.at(-1)!;
    expect(last.method).toBe('POST');
    expect(last.url).toBe('/_synapse/replication/rooms_write/txn%2F1');
    expect(last.auth).toBe('Bearer s3cret');
  });

  it('retries 5xx answers under the same transaction id, and passes Matrix errors through', async () => {
    const client = new ReplicationClient({ config: { instance_map: { persister: { host: '127.0.0.1', port: v4.port, tls: false } } }, backoffMs: 5 });
    v4.seen.length = 0;
    await expect(client.call('persister', 'flaky', { a: 1 })).resolves.toEqual({ echo: { a: 1 } });
    expect(v4.seen).toHaveLength(3);
    expect(new Set(v4.seen.map((s) => s.url)).size).toBe(1);
    expect(v4.seen[0]!.auth).toBeUndefined();
    await expect(client.call('persister', 'refuse', {})).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('reaches an instance_map host given as an IPv6 address', async (ctx) => {
    let v6: Awaited<ReturnType<typeof startServer>>;
    try {
      v6 = await startServer('::1', () => ({ status: 200, body: '{"ok":true}' }));
    } catch {
      ctx.skip(); // no IPv6 loopback here
      return;
    }
    servers.push(v6.server);
    for (const host of ['::1', '[::1]']) {
      const client = new ReplicationClient({ config: { instance_map: { w: { host, port: v6.port, tls: false } } } });
      await expect(client.call('w', 'ping', {})).resolves.toEqual({ ok: true });
    }
  });
});
