/**
 * The load generator's HTTP client against a real node:http server: the
 * per-request timeout (no answer, or a body that stalls), the caller's abort
 * signal, 429 retries, errors, query strings, base paths and kept-alive
 * connections — and that a finished request leaves no timer behind.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient, MatrixHttpError, queryString, UnreachableError } from '../../../src/bench/client.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server | undefined;
let client: HttpClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

/** A server answering with `handler`; returns a client for `http://127.0.0.1:port${basePath}`. */
async function serve(handler: Handler, basePath = ''): Promise<HttpClient> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  client = new HttpClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}${basePath}`);
  return client;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
};

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('bench HttpClient', () => {
  it('sends method, path, query, token and JSON body, and times the whole exchange', async () => {
    const seen: unknown[] = [];
    const c = await serve((req, res, body) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body });
      json(res, 200, { ok: true });
    }, '/prefix/');
    const res = await c.request('PUT', '/a/b%21', { token: 'tok', body: { x: 'é' }, query: { since: 's 1&2', skip: undefined, limit: 5 } });
    expect(res).toMatchObject({ status: 200, json: { ok: true }, bytes: 11 });
    expect(res.ms).toBeGreaterThan(0);
    const get = await c.request('GET', '/c');
    expect(get.json).toEqual({ ok: true });
    expect(seen).toEqual([
      { method: 'PUT', url: '/prefix/a/b%21?since=s%201%262&limit=5', auth: 'Bearer tok', type: 'application/json', body: '{"x":"é"}' },
      { method: 'GET', url: '/prefix/c', auth: undefined, type: undefined, body: '' },
    ]);
  });

  it('keeps the connection alive between requests', async () => {
    const ports = new Set<number>();
    const c = await serve((req, res) => {
      ports.add(req.socket.remotePort!);
      json(res, 200, {});
    });
    for (let i = 0; i < 5; i++) await c.request('GET', '/x');
    expect(ports.size).toBe(1);
  });

  it('times out a request that gets no answer, with the timeout as the reason', async () => {
    const c = await serve(() => {});
    const t0 = performance.now();
    const err = await c.request('GET', '/never', { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect((err as Error).message).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/never failed: timed out after 150 ms$/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('times out a response whose body stalls', async () => {
    const c = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
    });
    await expect(c.request('GET', '/stall', { timeoutMs: 150 })).rejects.toThrow(/failed: timed out after 150 ms/);
  });

  it('leaves no timer behind after answers and errors', async () => {
    const c = await serve((req, res) => json(res, req.url === '/bad' ? 400 : 200, { errcode: 'M_BAD_JSON' }));
    const before = timers();
    for (let i = 0; i < 20; i++) await c.request('GET', '/ok', { timeoutMs: 60_000 });
    await expect(c.request('GET', '/bad', { timeoutMs: 60_000 })).rejects.toThrow(MatrixHttpError);
    // Other timers (the previous tests' sockets) may end meanwhile; 21 leaked 60 s timers would not.
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it('stops at the caller\'s abort signal with the abort error, not as unreachable', async () => {
    const c = await serve(() => {});
    const ac = new AbortController();
    const pending = c.request('GET', '/sync', { signal: ac.signal, timeoutMs: 60_000 });
    setTimeout(() => ac.abort(), 50);
    const err = await pending.catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(UnreachableError);
    expect((err as Error).name).toBe('AbortError');
  });

  it('retries 429 after retry_after_ms and counts it', async () => {
    let n = 0;
    const c = await serve((_req, res) => (n++ < 2 ? json(res, 429, { errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 20 }) : json(res, 200, { n })));
    const res = await c.request('POST', '/limited', { body: {} });
    expect(res.json).toEqual({ n: 3 });
    expect(c.rateLimited).toBe(2);
  });

  it('throws Matrix errors with errcode, returns accepted statuses, survives a non-JSON body', async () => {
    const c = await serve((req, res) => {
      if (req.url === '/html') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
      } else json(res, 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'who?' });
    });
    await expect(c.request('GET', '/x?access_token=secret')).rejects.toThrow('GET /x?access_token=<redacted> -> 401 M_UNKNOWN_TOKEN: who?');
    expect((await c.request('GET', '/x', { accept: [401] })).json.errcode).toBe('M_UNKNOWN_TOKEN');
    const err = await c.request('GET', '/html').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MatrixHttpError);
    expect((err as MatrixHttpError).status).toBe(502);
  });

  it('reports a refused connection as unreachable', async () => {
    const c = await serve(() => {});
    const port = (server!.address() as AddressInfo).port;
    await new Promise((r) => server!.close(r));
    server = undefined;
    await expect(c.request('GET', '/x')).rejects.toThrow(new RegExp(`GET http://127.0.0.1:${port}/x failed: ECONNREFUSED`));
  });
});

describe('queryString', () => {
  it('encodes defined values only, in order', () => {
    expect(queryString(undefined)).toBe('');
    expect(queryString({ a: undefined })).toBe('');
    expect(queryString({ since: 's72_1', timeout: 0, filter: '{"a":1}' })).toBe('?since=s72_1&timeout=0&filter=%7B%22a%22%3A1%7D');
  });
});
