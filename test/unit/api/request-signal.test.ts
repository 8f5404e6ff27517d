/**
 * The request's `signal` (long-polls): aborted when the client goes away
 * before the answer, and not aborted once the answer was sent (nothing is
 * left to stop then).
 */
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildHttpServer } from '../../../src/api/http-server.js';
import { Router } from '../../../src/api/types.js';
import { Notifier } from '../../../src/streams/notifier.js';
import type { WaitSignal } from '../../../src/streams/notifier-types.js';
import { emptyToken } from '../../../src/streams/tokens.js';

let app: FastifyInstance;
let port: number;
const seen: WaitSignal[] = [];
const notifier = new Notifier({});
let woke: (why: string) => void = () => {};

beforeAll(async () => {
  const r = new Router();
  // A long-poll on the notifier (as /sync does), until aborted or 5 s.
  r.get('/wait', async (req) => {
    const signal = req.signal;
    seen.push(signal);
    const why = await notifier.waitForChange('@a:x', ['!r:x'], emptyToken(), 5000, signal);
    woke(why);
    return { why };
  });
  r.get('/quick', async (req) => {
    seen.push(req.signal);
    return {};
  });
  app = await buildHttpServer(r.routes, { logger: pino({ level: 'silent' }), processName: 'test', bodyLimit: 64 * 1024, trustProxy: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  notifier.shutdown();
  await app.close();
});

describe('request signal', () => {
  it('aborts a waiting long-poll when the client goes away', async () => {
    const done = new Promise<string>((r) => (woke = r));
    const sock = connect(port, '127.0.0.1');
    sock.write('GET /wait HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(notifier.waitingCount).toBe(1);
    sock.destroy();
    expect(await done).toBe('aborted');
    expect(seen.at(-1)!.aborted).toBe(true);
    expect(notifier.waitingCount).toBe(0);
  });

  it('a long-poll woken by a change answers, and its signal is not aborted after', async () => {
    const done = new Promise<string>((r) => (woke = r));
    const res = fetch(`http://127.0.0.1:${port}/wait`);
    await new Promise((r) => setTimeout(r, 100));
    notifier.notify({ stream: 'events', position: 1, rooms: ['!r:x'] });
    expect(await done).toBe('change');
    expect(await (await res).json()).toEqual({ why: 'change' });
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.at(-1)!.aborted).toBe(false);
    expect(notifier.waitingCount).toBe(0);
  });

  it('is not aborted after the answer was sent', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/quick`);
    expect(res.status).toBe(200);
    await res.text();
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.at(-1)!.aborted).toBe(false);
  });
});
