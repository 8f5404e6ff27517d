import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeReplicationPools, defaultPost as rawPost } from '../../../src/workers/replication-client.js';

const servers: Array<net.Server> = [];
afterEach(async () => {
  await closeReplicationPools();
  for (const s of servers.splice(0)) {
    (s as http.Server).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
});

async function listen(s: net.Server): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A raw server: each request (read up to the end of its body) gets `answer(n)`'s bytes, written in the given pieces. */
async function rawServer(answer: (n: number, request: string) => { pieces: string[]; close?: boolean }): Promise<{ base: string; connections: () => number }> {
  let n = 0;
  let connections = 0;
  const s = net.createServer((sock) => {
    connections++;
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const at = buf.indexOf('\r\n\r\n');
        if (at < 0) return;
        const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, at))?.[1] ?? 0);
        if (buf.length < at + 4 + len) return;
        const req = buf.slice(0, at + 4 + len);
        buf = buf.slice(at + 4 + len);
        const { pieces, close } = answer(++n, req);
        pieces.forEach((p, i) => setTimeout(() => sock.write(p), i * 5));
        if (close) setTimeout(() => sock.end(), pieces.length * 5 + 5);
      }
    });
  });
  const base = await listen(s);
  return { base, connections: () => connections };
}

describe('replication HTTP client (undici pool)', () => {
  it('talks to node:http: status, body, headers sent, and the connection kept for the next request', async () => {
    const seen: Array<{ url?: string; auth?: string; body: string; socket: net.Socket }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url, auth: req.headers.authorization, body, socket: req.socket });
        const out = JSON.stringify({ echo: JSON.parse(body), big: 'é'.repeat(100_000) });
        res.writeHead(req.url!.includes('missing') ? 404 : 200, { 'content-type': 'application/json' });
        // Half the answers chunked (no length), half with a length.
        if (seen.length % 2) res.end(out);
        else {
          res.write(out.slice(0, 10));
          res.end(out.slice(10));
        }
      });
    });
    const base = await listen(server);
    for (let i = 0; i < 4; i++) {
      const r = await rawPost(`${base}/_synapse/replication/x/t${i}`, { authorization: 'Bearer s', 'content-type': 'application/json' }, JSON.stringify({ i, s: 'ü' }), 5000);
      expect(r.status).toBe(200);
      const j = JSON.parse(r.text);
      expect(j.echo).toEqual({ i, s: 'ü' });
      expect(j.big).toHaveLength(100_000);
    }
    const missing = await rawPost(`${base}/missing`, {}, '{}', 5000);
    expect(missing.status).toBe(404);
    expect(seen.map((s) => s.url)).toEqual(['/_synapse/replication/x/t0', '/_synapse/replication/x/t1', '/_synapse/replication/x/t2', '/_synapse/replication/x/t3', '/missing']);
    expect(seen[0]!.auth).toBe('Bearer s');
    // Kept-alive: five sequential requests do not open five connections.
    expect(new Set(seen.map((s) => s.socket)).size).toBeLessThanOrEqual(2);
    // Concurrent requests use several connections, all answered.
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => rawPost(`${base}/c`, {}, JSON.stringify(i), 5000)));
    expect(many.map((r) => JSON.parse(r.text).echo)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('parses answers split anywhere: chunked with extensions and trailers, length, and until close', async () => {
    const { base } = await rawServer((n) => {
      if (n === 1) return { pieces: ['HTTP/1.1 2', '00 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a', '"\r\n3;ext=1\r\n:1}\r\n', '0\r\nX-T: 1\r\n\r\n'] };
      if (n === 2) return { pieces: ['HTTP/1.1 403 Forbidden\r\nContent-Length: 2', '5\r\n\r\n{"errcode":', '"M_FORBIDDEN"}'] };
      return { pieces: ['HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"b":', '2}'], close: true };
    });
    expect(await rawPost(`${base}/a`, {}, '{}', 5000)).toEqual({ status: 200, text: '{"a":1}' });
    expect(await rawPost(`${base}/a`, {}, '{}', 5000)).toEqual({ status: 403, text: '{"errcode":"M_FORBIDDEN"}' });
    expect(await rawPost(`${base}/a`, {}, '{}', 5000)).toEqual({ status: 200, text: '{"b":2}' });
  });

  it('sends again on a new connection when a kept-alive one closes without answering, and fails on a cut answer', async () => {
    const { base, connections } = await rawServer((n) => {
      if (n === 1) return { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'] };
      // The request reached a connection the server was closing: no answer.
      if (n === 2) return { pieces: [], close: true };
      if (n === 3) return { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"n":3}'] };
      return { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}'], close: true };
    });
    expect((await rawPost(`${base}/a`, {}, '{}', 5000)).text).toBe('{}');
    expect((await rawPost(`${base}/a`, {}, '{}', 5000)).text).toBe('{"n":3}');
    expect(connections()).toBe(2);
    await expect(rawPost(`${base}/a`, {}, '{}', 5000)).rejects.toThrow();
  });

  it('rejects on refusal, on a malformed answer and on a timeout, and refuses header injection', async () => {
    const dead = net.createServer();
    const deadBase = await listen(dead);
    await new Promise((r) => dead.close(r));
    servers.splice(servers.indexOf(dead), 1);
    await expect(rawPost(`${deadBase}/a`, {}, '{}', 5000)).rejects.toThrow(/ECONNREFUSED/);
    const { base } = await rawServer((n) => (n === 1 ? { pieces: ['garbage\r\n\r\n'] } : { pieces: [] }));
    await expect(rawPost(`${base}/a`, {}, '{}', 5000)).rejects.toThrow();
    await expect(rawPost(`${base}/a`, {}, '{}', 100)).rejects.toThrow(/no answer within 100 ms/);
    await expect(rawPost(`${base}/a`, { authorization: 'x\r\nX-Evil: 1' }, '{}', 5000)).rejects.toThrow();
  });
});
