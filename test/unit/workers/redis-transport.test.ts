/** Against the real Redis at 127.0.0.1:6379 (skipped with a message when it is not there). */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand, serialiseCommand, type Command } from '../../../src/workers/commands.js';
import { commandOrigin, lineOrigin, RedisTransport } from '../../../src/workers/redis-transport.js';

const REDIS = { host: '127.0.0.1', port: 6379 };

async function redisUp(): Promise<boolean> {
  const c = new Redis({ ...REDIS, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await c.connect();
    await c.ping();
    return true;
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

const up = await redisUp();
if (!up) console.warn('redis-transport tests skipped: no Redis at 127.0.0.1:6379');

function nextCommand(t: RedisTransport, pred: (c: Command) => boolean = () => true, timeoutMs = 5000): Promise<{ cmd: Command; channel: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no command arrived')), timeoutMs);
    const on = (cmd: Command, channel: string) => {
      if (!pred(cmd)) return;
      clearTimeout(timer);
      t.off('command', on);
      resolve({ cmd, channel });
    };
    t.on('command', on);
  });
}

describe.skipIf(!up)('RedisTransport', () => {
  const serverName = `t${randomBytes(4).toString('hex')}.example.org`;
  let a: RedisTransport;
  let b: RedisTransport;
  beforeAll(async () => {
    a = new RedisTransport({ serverName, instanceName: 'writer1', redis: REDIS });
    b = new RedisTransport({ serverName, instanceName: 'reader1', redis: REDIS });
    await Promise.all([a.start(), b.start()]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('publishes on the server channel and delivers to other processes, not back to the sender', async () => {
    const got = nextCommand(b);
    const echoed = nextCommand(a, (c) => c.name === 'RDATA', 300).then(() => true, () => false);
    expect(await a.send({ name: 'RDATA', stream: 'events', instance: 'writer1', token: 7, row: { event_id: '$e' } })).toBe(true);
    expect(await got).toEqual({ cmd: { name: 'RDATA', stream: 'events', instance: 'writer1', token: 7, row: { event_id: '$e' } }, channel: serverName });
    expect(await echoed).toBe(false);
  });

  it('sends what is published in one turn as one message, its commands one per line, in order', async () => {
    const raw = new Redis(REDIS);
    const messages: string[] = [];
    await raw.subscribe(serverName);
    raw.on('message', (_ch: string, m: string) => messages.push(m));
    const got: Command[] = [];
    const on = (cmd: Command) => void got.push(cmd);
    b.on('command', on);
    try {
      const sent = [1, 2, 3].map((token) => a.send({ name: 'RDATA', stream: 'events', instance: 'writer1', token, row: { prev: token - 1 } }));
      expect(await Promise.all(sent)).toEqual([true, true, true]);
      for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      expect(got.map((c) => (c as { token: number }).token)).toEqual([1, 2, 3]);
      expect(messages).toHaveLength(1);
      expect(messages[0]!.split('\n')).toHaveLength(3);
    } finally {
      b.off('command', on);
      raw.disconnect();
    }
  });

  it('reads several commands from one message, skipping malformed lines', async () => {
    const pub = new Redis(REDIS);
    const got: Command[] = [];
    const on = (cmd: Command) => void got.push(cmd);
    b.on('command', on);
    try {
      await pub.publish(serverName, 'PING 1\nGARBAGE\nPOSITION typing writer1 1 2\n');
      for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(got).toEqual([{ name: 'PING', ts: 1 }, { name: 'POSITION', stream: 'typing', instance: 'writer1', prev: 1, next: 2 }]);
    } finally {
      b.off('command', on);
      pub.disconnect();
    }
  });

  it('targets one instance on its own channel', async () => {
    const got = nextCommand(a);
    await b.sendTo('writer1', { name: 'REPLICATE' });
    expect(await got).toEqual({ cmd: { name: 'REPLICATE' }, channel: `${serverName}/writer1` });
  });

  it('ignores malformed messages', async () => {
    const pub = new Redis(REDIS);
    const got = nextCommand(b);
    await pub.publish(serverName, 'GARBAGE line');
    await pub.publish(serverName, 'PING 5');
    expect((await got).cmd).toEqual({ name: 'PING', ts: 5 });
    pub.disconnect();
  });

  it('reconnects after CLIENT KILL, announces it, and receives again', async () => {
    const admin = new Redis(REDIS);
    const list = (await admin.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(`name=myelin:${serverName}:reader1:sub`));
    expect(line).toBeDefined();
    const id = /\bid=(\d+)/.exec(line!)![1]!;
    const reconnected = new Promise<void>((r) => b.once('reconnected', () => r()));
    // the reconnected reader asks everyone for positions
    const replicate = nextCommand(a, (c) => c.name === 'REPLICATE');
    await admin.client('KILL', 'ID', id);
    await reconnected;
    await replicate;
    const got = nextCommand(b, (c) => c.name === 'POSITION');
    // resubscription may lag the 'ready' event by a moment: publish until heard
    const timer = setInterval(() => void a.send({ name: 'POSITION', stream: 'typing', instance: 'writer1', prev: 1, next: 2 }), 100);
    try {
      expect((await got).cmd).toEqual({ name: 'POSITION', stream: 'typing', instance: 'writer1', prev: 1, next: 2 });
    } finally {
      clearInterval(timer);
      admin.disconnect();
    }
  });
});

describe('RedisTransport without Redis', () => {
  it('starts anyway and reports publishing failures instead of throwing', async () => {
    const t = new RedisTransport({ serverName: 'x.org', instanceName: 'w', redis: { host: '127.0.0.1', port: 1 } });
    const started = Date.now();
    await t.start(300);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await t.send({ name: 'PING', ts: 1 })).toBe(false);
    await t.stop();
  });
});

describe('lineOrigin', () => {
  it('reads the origin of every kind of command without parsing it, as commandOrigin does', () => {
    const cmds: Command[] = [
      { name: 'RDATA', stream: 'events', instance: 'event_persister1', token: 12, row: { event_id: '$a b', room_id: '!r:x' } },
      { name: 'RDATA', stream: 'caches', instance: 'generic_worker1', token: 'batch', row: ['x'] },
      { name: 'POSITION', stream: 'typing', instance: 'stream_writer', prev: 3, next: 4 },
      { name: 'USER_SYNC', instance: 'gw2', userId: '@u:x', syncing: true, lastSyncMs: 5 },
      { name: 'CLEAR_USER_SYNC', instance: 'gw2' },
      { name: 'FEDERATION_ACK', instance: 'fed1', token: 9 },
      { name: 'REPLICATE' },
      { name: 'PING', ts: 1 },
      { name: 'USER_IP', info: { user_id: '@u:x', access_token: 't', ip: '::1', user_agent: 'a b', device_id: 'D', last_seen: 1 } },
      { name: 'REMOTE_SERVER_UP', server: 'other.example' },
    ];
    for (const c of cmds) {
      const line = serialiseCommand(c);
      expect(lineOrigin(line), line).toBe(commandOrigin(parseCommand(line)));
    }
    expect(lineOrigin('RDATA')).toBeUndefined();
    expect(lineOrigin('RDATA events')).toBeUndefined();
    expect(lineOrigin('CLEAR_USER_SYNC w1')).toBe('w1');
  });
});
