/**
 * The Redis pub/sub transport of replication (DESIGN.md §4): "a doorbell,
 * the database is the record".
 *
 * Channels:
 *   `<server_name>`             broadcast: every process subscribes (RDATA, POSITION, REPLICATE, USER_IP, ...)
 *   `<server_name>/<instance>`  targeted: commands for one instance (e.g. REPLICATE to a writer)
 *   `<server_name>|<stream>|<instance>`
 *                               a stream's rows and positions from one writer, for the
 *                               streams given in `ownChannelStreams` (events): a
 *                               process subscribes to them while it follows the stream
 *                               (`follow`/`unfollow`), and a writer never to its own
 *                               (it is not woken by its own rows coming back)
 * Server names contain neither `/` nor `|`, so these never collide; several
 * homeservers can share one Redis. A process publishes on one connection, and
 * the commands of one turn go out in the order they were sent, whatever their
 * channels: a process subscribed to several channels hears another's commands
 * in the order that one sent them.
 *
 * Each message carries one or more line commands (commands.ts): what a
 * process publishes on one channel in one turn of its event loop (the rows of
 * a group commit, a POSITION after them, ...) goes out as ONE message, its
 * commands one per line in the order they were sent. Every message wakes every
 * subscriber, so this is what keeps the cost of following the streams down
 * under load. Two connections are used
 * (a subscribed Redis connection cannot publish). ioredis reconnects by
 * itself and re-subscribes; after every reconnection the transport emits
 * `reconnected` (and sends REPLICATE) so that stream followers catch up from
 * the database: messages published while we were away are lost for good.
 */
import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { parseCommand, serialiseCommand, splitCommandLines, type Command } from './commands.js';

export interface RedisTransportOptions {
  serverName: string;
  instanceName: string;
  redis: { host?: string; port?: number; password?: string; dbid?: number; path?: string };
  logger?: Logger;
  /** Extra ioredis options (tests). */
  ioredis?: RedisOptions;
  /**
   * Streams whose RDATA and POSITION go on a channel per writer instead of
   * the broadcast channel (followed with `follow`). Default none.
   */
  ownChannelStreams?: readonly string[];
}

export interface RedisTransportEvents {
  /** A command from another process (or ours, for broadcast commands without an instance). */
  command: [cmd: Command, channel: string];
  /** The subscription came back after a disconnection: catch up from the database. */
  reconnected: [];
  /** The subscription was lost (commands published meanwhile are missed). */
  disconnected: [];
}

/** A message is split before it grows past this many characters (commands are never split). */
export const MAX_MESSAGE_CHARS = 256 * 1024;

export function broadcastChannel(serverName: string): string {
  return serverName;
}

export function instanceChannel(serverName: string, instance: string): string {
  return `${serverName}/${instance}`;
}

/** The channel of one writer's rows of `stream` (streams in `ownChannelStreams`). */
export function streamChannel(serverName: string, stream: string, instance: string): string {
  return `${serverName}|${stream}|${instance}`;
}

/** How long `follow` waits for Redis to confirm a subscription before going on without it. */
export const FOLLOW_WAIT_MS = 1000;

/** The instance a command says it comes from, when it says. */
export function commandOrigin(cmd: Command): string | undefined {
  switch (cmd.name) {
    case 'RDATA':
    case 'POSITION':
    case 'USER_SYNC':
    case 'CLEAR_USER_SYNC':
    case 'FEDERATION_ACK':
      return cmd.instance;
    default:
      return undefined;
  }
}

/**
 * The origin of a command line without parsing it (the same answer as
 * `commandOrigin` of the parsed command, or undefined): a process skips its
 * own broadcasts before paying for their JSON.
 */
export function lineOrigin(line: string): string | undefined {
  const a = line.indexOf(' ');
  if (a < 0) return undefined;
  let from: number;
  switch (line.slice(0, a)) {
    case 'RDATA':
    case 'POSITION':
      from = line.indexOf(' ', a + 1) + 1; // the third word
      if (from === 0) return undefined;
      break;
    case 'USER_SYNC':
    case 'CLEAR_USER_SYNC':
    case 'FEDERATION_ACK':
      from = a + 1; // the second word
      break;
    default:
      return undefined;
  }
  const end = line.indexOf(' ', from);
  return end < 0 ? line.slice(from) : line.slice(from, end);
}

export class RedisTransport extends EventEmitter<RedisTransportEvents> {
  readonly broadcast: string;
  readonly own: string;
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private readyOnce = false;
  private stopped = false;
  /**
   * Commands waiting for the end of this turn of the event loop, in the
   * order they were sent: runs of commands for one channel.
   */
  private outbox: Array<{ channel: string; lines: string[]; done: Array<(ok: boolean) => void> }> = [];
  private flushing: NodeJS.Immediate | undefined;
  private readonly ownChannelStreams: ReadonlySet<string>;
  /** The per-writer channels subscribed to, per stream. */
  private readonly followed = new Map<string, Set<string>>();
  /** Subscriptions asked for and not yet confirmed, per channel. */
  private readonly subscribing = new Map<string, Promise<boolean>>();

  constructor(private readonly opts: RedisTransportOptions) {
    super();
    this.broadcast = broadcastChannel(opts.serverName);
    this.own = instanceChannel(opts.serverName, opts.instanceName);
    this.ownChannelStreams = new Set(opts.ownChannelStreams ?? []);
  }

  private clientOptions(role: 'pub' | 'sub'): RedisOptions {
    const r = this.opts.redis;
    return {
      host: r.host ?? 'localhost',
      port: r.port ?? 6379,
      password: r.password,
      db: r.dbid ?? 0,
      path: r.path,
      connectionName: `myelin:${this.opts.serverName}:${this.opts.instanceName}:${role}`,
      // Publishing is a doorbell: do not queue forever while Redis is away.
      // Subscribing waits for Redis however long it takes.
      maxRetriesPerRequest: role === 'pub' ? 2 : null,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      ...this.opts.ioredis,
    };
  }

  /**
   * Connects and subscribes. If Redis does not answer within `waitMs` the
   * process starts anyway (the database is the record); the subscription
   * completes in the background and `reconnected` fires once it does.
   */
  async start(waitMs = 5000): Promise<void> {
    this.pub = new Redis(this.clientOptions('pub'));
    this.sub = new Redis(this.clientOptions('sub'));
    for (const c of [this.pub, this.sub]) c.on('error', (e) => this.opts.logger?.debug({ err: e }, 'redis connection error'));
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    let subscribedAtStart = false;
    let startGaveUp = false;
    this.sub.on('ready', () => {
      if (!this.readyOnce) {
        this.readyOnce = true;
        // The first connection is no reconnection, unless start() gave up waiting for it.
        if (!startGaveUp) return;
      }
      // ioredis re-subscribed (autoResubscribe) before 'ready'.
      this.opts.logger?.info('redis replication connection (re)established; catching up from the database');
      this.emit('reconnected');
      void this.send({ name: 'REPLICATE' });
    });
    this.sub.on('close', () => {
      if (!this.stopped && this.readyOnce) this.emit('disconnected');
    });
    const subscribed = this.sub.subscribe(this.broadcast, this.own).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)));
    subscribedAtStart = await Promise.race([subscribed, timeout]);
    clearTimeout(timer);
    if (!subscribedAtStart) {
      startGaveUp = true;
      subscribed.catch(() => {});
      this.opts.logger?.warn(`redis at ${this.opts.redis.host ?? 'localhost'}:${this.opts.redis.port ?? 6379} is not answering; starting anyway, replication will catch up when it is back`);
    }
  }

  /**
   * Subscribes to the channels of `stream` of the given writers (not our
   * own). Resolves true once Redis confirmed, false if it refused or did not
   * answer within `FOLLOW_WAIT_MS` (Redis is slow or away: the subscription
   * stays asked for, ioredis makes it when Redis answers, and a later
   * `follow` waits for that confirmation; a refused one is asked again).
   */
  async follow(stream: string, writers: readonly string[]): Promise<boolean> {
    if (!this.sub || this.stopped) return false;
    let set = this.followed.get(stream);
    if (!set) this.followed.set(stream, (set = new Set()));
    const add: string[] = [];
    const waits: Array<Promise<boolean>> = [];
    for (const w of writers) {
      if (w === this.opts.instanceName) continue;
      const ch = streamChannel(this.opts.serverName, stream, w);
      if (!set.has(ch)) add.push(ch);
      else if (this.subscribing.has(ch)) waits.push(this.subscribing.get(ch)!); // asked before, not yet confirmed
      set.add(ch);
    }
    if (add.length) {
      const done = this.sub.subscribe(...add).then(
        () => true,
        () => {
          // Refused: forgotten, so that the next `follow` asks again.
          for (const ch of add) set.delete(ch);
          return false;
        },
      );
      for (const ch of add) this.subscribing.set(ch, done);
      void done.then(() => {
        for (const ch of add) if (this.subscribing.get(ch) === done) this.subscribing.delete(ch);
      });
      waits.push(done);
    }
    if (!waits.length) return true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), FOLLOW_WAIT_MS)));
    const ok = await Promise.race([Promise.all(waits).then((all) => all.every(Boolean)), late]);
    clearTimeout(timer);
    return ok;
  }

  /** Stops hearing `stream`'s rows (the channels `follow` subscribed to). */
  async unfollow(stream: string): Promise<void> {
    const set = this.followed.get(stream);
    if (!set?.size || !this.sub || this.stopped) return;
    const channels = [...set];
    set.clear();
    for (const ch of channels) this.subscribing.delete(ch);
    // Not awaited past a short wait: a Redis that is away forgets subscriptions anyway.
    await Promise.race([this.sub.unsubscribe(...channels).catch(() => undefined), new Promise((r) => setTimeout(r, FOLLOW_WAIT_MS).unref?.())]);
  }

  /** Whether a message on `channel` was sent to this process alone. */
  isDirect(channel: string): boolean {
    return channel === this.own;
  }

  private onMessage(channel: string, message: string): void {
    const mine = channel === this.broadcast ? this.opts.instanceName : undefined;
    for (const line of splitCommandLines(message)) {
      // Our own broadcasts come back to us: skipped before parsing.
      if (mine !== undefined && lineOrigin(line) === mine) continue;
      let cmd: Command;
      try {
        cmd = parseCommand(line);
      } catch (e) {
        this.opts.logger?.warn({ err: e, channel }, 'ignoring a malformed replication command');
        continue;
      }
      this.emit('command', cmd, channel);
    }
  }

  /**
   * Publishes to every process (rows and positions of the streams in
   * `ownChannelStreams`: to those that follow them). Returns false when
   * Redis is unreachable (the database still has the data).
   */
  async send(cmd: Command): Promise<boolean> {
    if (this.ownChannelStreams.size && (cmd.name === 'RDATA' || cmd.name === 'POSITION') && this.ownChannelStreams.has(cmd.stream)) {
      return this.publish(streamChannel(this.opts.serverName, cmd.stream, cmd.instance), cmd);
    }
    return this.publish(this.broadcast, cmd);
  }

  /** Publishes to one instance. */
  async sendTo(instance: string, cmd: Command): Promise<boolean> {
    return this.publish(instanceChannel(this.opts.serverName, instance), cmd);
  }

  /**
   * Queues `cmd` for `channel`; the commands queued in this turn of the event
   * loop go out together (one message per channel) once it ends.
   */
  private publish(channel: string, cmd: Command): Promise<boolean> {
    // A doorbell: when Redis is away, do not wait (readers catch up from the database).
    if (!this.pub || this.stopped || this.pub.status !== 'ready') return Promise.resolve(false);
    let line: string;
    try {
      line = serialiseCommand(cmd);
    } catch (e) {
      this.opts.logger?.debug({ err: e }, 'redis publish failed: bad command');
      return Promise.resolve(false);
    }
    let box = this.outbox[this.outbox.length - 1];
    if (box?.channel !== channel) this.outbox.push((box = { channel, lines: [], done: [] }));
    box.lines.push(line);
    this.flushing ??= setImmediate(() => void this.flush());
    const b = box;
    return new Promise<boolean>((resolve) => b.done.push(resolve));
  }

  /**
   * Publishes every queued command, in order: one message per run of
   * commands for one channel (split only when very large).
   */
  private async flush(): Promise<void> {
    this.flushing = undefined;
    const boxes = this.outbox;
    if (!boxes.length) return;
    this.outbox = [];
    const messages: Array<[string, string]> = [];
    for (const { channel, ...box } of boxes) {
      let cur = '';
      for (const line of box.lines) {
        if (cur && cur.length + 1 + line.length > MAX_MESSAGE_CHARS) {
          messages.push([channel, cur]);
          cur = '';
        }
        cur = cur ? `${cur}\n${line}` : line;
      }
      if (cur) messages.push([channel, cur]);
    }
    let ok = false;
    const pub = this.pub;
    if (pub && pub.status === 'ready') {
      try {
        if (messages.length === 1) await pub.publish(messages[0]![0], messages[0]![1]);
        else {
          const p = pub.pipeline();
          for (const [channel, message] of messages) p.publish(channel, message);
          const res = await p.exec();
          const err = res?.find(([e]) => e)?.[0];
          if (err) throw err;
        }
        ok = true;
      } catch (e) {
        this.opts.logger?.debug({ err: e }, 'redis publish failed');
      }
    }
    for (const box of boxes) for (const d of box.done) d(ok);
  }

  async stop(): Promise<void> {
    // What was queued before stopping still goes out (e.g. CLEAR_USER_SYNC at shut-down).
    if (this.flushing) {
      clearImmediate(this.flushing);
      await this.flush();
    }
    this.stopped = true;
    await Promise.all([this.pub, this.sub].map(async (c) => {
      if (!c) return;
      if (c.status !== 'ready') {
        c.disconnect();
        return;
      }
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    }));
  }
}
