/**
 * A request body over the limit: 413 M_TOO_LARGE, read by a client that is
 * still sending its body (the server drains the body before it answers and
 * closes the connection, rather than resetting the connection under the
 * client's writes).
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { DRAIN_MAX_BYTES } from '../../../src/api/drain-body.js';
import { buildHttpServer } from '../../../src/api/http-server.js';
import { Router } from '../../../src/api/types.js';

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  const r = new Router();
  r.post('/echo', async (req) => ({ size: req.rawBody?.length ?? 0 }));
  app = await buildHttpServer(r.routes, { logger: pino({ level: 'silent' }), processName: 'test', bodyLimit: 64 * 1024, trustProxy: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await app.close();
});

/**
 * Sends the head, then the body in `chunks` pieces `delayMs` apart; resolves
 * with the response text once the server closes, and whether the whole body
 * had been sent when the answer began.
 */
function slowPost(body: Buffer, opts: { chunked: boolean; chunks: number; delayMs: number }): Promise<{ text: string; error?: string; answeredAfterBody: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    let error: string | undefined;
    let sentAll = false;
    let answeredAfterBody = false;
    sock.on('data', (d) => {
      if (!text) answeredAfterBody = sentAll;
      text += d.toString('latin1');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    sock.on('close', () => resolve({ text, answeredAfterBody, ...(error ? { error } : {}) }));
    const head = opts.chunked
      ? 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
      : `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    sock.write(head);
    const size = Math.ceil(body.length / opts.chunks);
    let i = 0;
    const next = () => {
      if (sock.destroyed) return;
      const piece = body.subarray(i, i + size);
      i += size;
      sock.write(opts.chunked ? Buffer.concat([Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n')]) : piece, () => {
        if (i < body.length) setTimeout(next, opts.delayMs);
      });
      if (i >= body.length) {
        // The last bytes are handed to the socket now: an answer can only come after them.
        if (opts.chunked) sock.write('0\r\n\r\n');
        sentAll = true;
      }
    };
    next();
  });
}

describe('request body over the limit', () => {
  it('is answered 413 M_TOO_LARGE after the client has sent it (Content-Length)', async () => {
    const r = await slowPost(Buffer.alloc(1024 * 1024, 0x61), { chunked: false, chunks: 16, delayMs: 5 });
    expect(r.error).toBeUndefined();
    expect(r.answeredAfterBody).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.text).toContain('"errcode":"M_TOO_LARGE"');
  });

  it('is answered 413 M_TOO_LARGE after the client has sent it (chunked)', async () => {
    const r = await slowPost(Buffer.alloc(1024 * 1024, 0x61), { chunked: true, chunks: 16, delayMs: 5 });
    expect(r.error).toBeUndefined();
    expect(r.answeredAfterBody).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.text).toContain('"errcode":"M_TOO_LARGE"');
  });

  it('is answered at once when the announced body is too large to drain', async () => {
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let text = '';
      sock.on('data', (d) => (text += d.toString('latin1')));
      sock.on('error', () => {});
      sock.on('close', () => resolve(text));
      sock.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${DRAIN_MAX_BYTES + 1}\r\n\r\n{`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('still serves bodies under the limit', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ size: 7 });
  });
});
