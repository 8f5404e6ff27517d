/** Against the real Redis at 127.0.0.1:6379 (skipped with a message when it is not there). */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand, serialiseCommand, type Command } from '../../../src/workers/commands.js';
import { commandOrigin, lineOrigin, RedisTransport, streamChannel } from '../../../src/workers/redis-transport.js';

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

describe.skipIf(!up)('RedisTransport: a stream on channels per writer', () => {
  const serverName = `t${randomBytes(4).toString('hex')}.example.org`;
  const make = (instanceName: string) => new RedisTransport({ serverName, instanceName, redis: REDIS, ownChannelStreams: ['events'] });
  let p1: RedisTransport;
  let p2: RedisTransport;
  let reader: RedisTransport;
  const row = (instance: string, token: number): Command => ({ name: 'RDATA', stream: 'events', instance, token, row: { prev: token - 1 } });
  const heard = (t: RedisTransport, pred: (c: Command) => boolean, ms = 300) => nextCommand(t, pred, ms).then((x) => x, () => undefined);
  beforeAll(async () => {
    [p1, p2, reader] = [make('persister1'), make('persister2'), make('reader')];
    await Promise.all([p1.start(), p2.start(), reader.start()]);
    await p1.follow('events', ['persister1', 'persister2']);
    await p2.follow('events', ['persister1', 'persister2']);
  });
  afterAll(async () => {
    await Promise.all([p1?.stop(), p2?.stop(), reader?.stop()]);
  });

  it('puts a writer\'s rows on its own channel: the other writer hears them, the writer itself and a process not following do not', async () => {
    const admin = new Redis(REDIS);
    try {
      const counts = (await admin.pubsub('NUMSUB', streamChannel(serverName, 'events', 'persister1'), streamChannel(serverName, 'events', 'persister2'))) as Array<string | number>;
      expect(counts.map(String)).toEqual([streamChannel(serverName, 'events', 'persister1'), '1', streamChannel(serverName, 'events', 'persister2'), '1']);
    } finally {
      admin.disconnect();
    }
    const atP2 = heard(p2, (c) => c.name === 'RDATA', 5000);
    const echo = heard(p1, (c) => c.name === 'RDATA');
    const atReader = heard(reader, (c) => c.name === 'RDATA');
    expect(await p1.send(row('persister1', 1))).toBe(true);
    expect(await atP2).toEqual({ cmd: row('persister1', 1), channel: streamChannel(serverName, 'events', 'persister1') });
    expect(await echo).toBeUndefined();
    expect(await atReader).toBeUndefined();
    // Other streams stay on the broadcast channel.
    const typing = heard(reader, (c) => c.name === 'POSITION', 5000);
    await p1.send({ name: 'POSITION', stream: 'typing', instance: 'persister1', prev: 0, next: 3 });
    expect((await typing)?.channel).toBe(serverName);
  });

  it('follows and unfollows on demand; a message on a writer\'s channel is not taken for a targeted one', async () => {
    expect(await reader.follow('events', ['persister1', 'persister2'])).toBe(true);
    const got = heard(reader, (c) => c.name === 'POSITION' && c.stream === 'events', 5000);
    await p2.send({ name: 'POSITION', stream: 'events', instance: 'persister2', prev: 4, next: 5 });
    const x = await got;
    expect(x?.channel).toBe(streamChannel(serverName, 'events', 'persister2'));
    expect(reader.isDirect(x!.channel)).toBe(false);
    expect(reader.isDirect(`${serverName}/reader`)).toBe(true);
    await reader.unfollow('events');
    const after = heard(reader, (c) => c.name === 'RDATA');
    await p2.send(row('persister2', 6));
    expect(await after).toBeUndefined();
  });

  it('a refused subscription is asked again by the next follow; one not yet confirmed is waited for', async () => {
    const sub = (reader as any).sub as { subscribe: (...ch: string[]) => Promise<unknown> };
    const real = sub.subscribe;
    sub.subscribe = () => Promise.reject(new Error('refused'));
    try {
      expect(await reader.follow('events', ['persister2'])).toBe(false);
    } finally {
      sub.subscribe = real;
    }
    let confirm!: () => void;
    sub.subscribe = (...ch: string[]) => new Promise((resolve, reject) => (confirm = () => void real.apply(sub, ch).then(resolve, reject)));
    try {
      const first = reader.follow('events', ['persister2']); // asked again: a new SUBSCRIBE
      let secondDone = false;
      const second = reader.follow('events', ['persister2']).then((ok) => ((secondDone = true), ok));
      await new Promise((r) => setTimeout(r, 50));
      expect(secondDone).toBe(false); // waits for the confirmation, not true at once
      confirm();
      expect(await first).toBe(true);
      expect(await second).toBe(true);
    } finally {
      sub.subscribe = real;
    }
    const got = heard(reader, (c) => c.name === 'RDATA', 5000);
    await p2.send(row('persister2', 20));
    expect((await got)?.cmd).toEqual(row('persister2', 20));
    await reader.unfollow('events');
  });

  it('keeps the order of one turn\'s commands across channels', async () => {
    await reader.follow('events', ['persister1']);
    const got: string[] = [];
    const on = (cmd: Command) => void got.push(cmd.name === 'RDATA' ? `${cmd.stream}:${String(cmd.token)}` : cmd.name);
    reader.on('command', on);
    try {
      void p1.send({ name: 'RDATA', stream: 'caches', instance: 'persister1', token: 1, row: { name: 'x', keys: [] } });
      void p1.send(row('persister1', 10));
      void p1.send({ name: 'RDATA', stream: 'caches', instance: 'persister1', token: 2, row: { name: 'x', keys: [] } });
      void p1.send(row('persister1', 11));
      void p1.send(row('persister1', 12));
      for (let i = 0; i < 100 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
      expect(got).toEqual(['caches:1', 'events:10', 'caches:2', 'events:11', 'events:12']);
    } finally {
      reader.off('command', on);
      await reader.unfollow('events');
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
