/**
 * A fake Redis for the replication unit tests: every transport hears the
 * others' broadcasts (not its own), and a targeted command reaches only its
 * instance. The bus can be down (`up = false`: sends fail), hold messages
 * back until `release()` (a slow Redis), or leave some processes deaf.
 */
import { EventEmitter } from 'node:events';
import type { Command } from '../../../src/workers/commands.js';
import type { TransportLike } from '../../../src/workers/stream-replication.js';

export const BROADCAST = 'server';

export interface FakeBusOptions {
  /** Deliver on a microtask instead of during `send` (default false). */
  async?: boolean;
  /**
   * Transports offer `sendTo` (default true); without it the replicator
   * sends what it would target to everyone.
   */
  targeted?: boolean;
  /**
   * events rows and positions go on a channel per writer, as with the real
   * transport's `ownChannelStreams`: heard only by transports that `follow`
   * that writer (default false: everyone hears them).
   */
  eventsChannels?: boolean;
}

export class FakeBus {
  readonly transports: FakeTransport[] = [];
  /** Every command sent, in order; `to` is `*` for a broadcast. */
  readonly log: Array<{ cmd: Command; to: string }> = [];
  up = true;
  /** Hold messages until release(). */
  hold = false;
  /** Processes that hear nothing. */
  readonly deaf = new Set<string>();
  private held: Array<() => void> = [];

  constructor(readonly opts: FakeBusOptions = {}) {}

  /** The commands sent, in order. */
  get sent(): Command[] {
    return this.log.map((l) => l.cmd);
  }

  transport(me: string): FakeTransport & TransportLike {
    const t = new FakeTransport(this, me);
    if (this.opts.targeted === false) (t as { sendTo?: unknown }).sendTo = undefined;
    if (!this.opts.eventsChannels) Object.assign(t, { follow: undefined, unfollow: undefined });
    this.transports.push(t);
    return t;
  }

  /** Delivers what was held and stops holding. */
  release(): void {
    const h = this.held;
    this.held = [];
    this.hold = false;
    for (const d of h) d();
  }

  /** @internal */
  deliver(from: FakeTransport, cmd: Command, to: string): boolean {
    if (!this.up) return false;
    this.log.push({ cmd, to });
    const own = to === '*' && this.opts.eventsChannels && (cmd.name === 'RDATA' || cmd.name === 'POSITION') && cmd.stream === 'events' ? cmd.instance : undefined;
    const targets = this.transports.filter((t) => t !== from && (own !== undefined ? t.follows.has(own) : to === '*' || t.me === to));
    const channel = own !== undefined ? `${BROADCAST}|events|${own}` : to === '*' ? BROADCAST : `${BROADCAST}/${to}`;
    const run = () => {
      for (const t of targets) if (!this.deaf.has(t.me)) t.emit('command', cmd, channel);
    };
    if (this.hold) this.held.push(run);
    else if (this.opts.async) queueMicrotask(run);
    else run();
    return true;
  }
}

export class FakeTransport extends EventEmitter {
  readonly broadcast = BROADCAST;
  /** The events writers whose channels this transport follows (`eventsChannels`). */
  readonly follows = new Set<string>();
  /** Every follow and unfollow, in order. */
  readonly followLog: string[] = [];
  constructor(
    readonly bus: FakeBus,
    readonly me: string,
  ) {
    super();
  }
  async send(cmd: Command): Promise<boolean> {
    return this.bus.deliver(this, cmd, '*');
  }
  async sendTo(instance: string, cmd: Command): Promise<boolean> {
    return this.bus.deliver(this, cmd, instance);
  }
  isDirect(channel: string): boolean {
    return channel === `${BROADCAST}/${this.me}`;
  }
  async follow(stream: string, writers: readonly string[]): Promise<boolean> {
    for (const w of writers) if (w !== this.me) this.follows.add(w);
    this.followLog.push(`follow ${stream}`);
    return this.bus.up;
  }
  async unfollow(stream: string): Promise<void> {
    this.follows.clear();
    this.followLog.push(`unfollow ${stream}`);
  }
}
