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
    const targets = this.transports.filter((t) => t !== from && (to === '*' || t.me === to));
    const run = () => {
      for (const t of targets) if (!this.deaf.has(t.me)) t.emit('command', cmd, to === '*' ? BROADCAST : `${BROADCAST}/${to}`);
    };
    if (this.hold) this.held.push(run);
    else if (this.opts.async) queueMicrotask(run);
    else run();
    return true;
  }
}

export class FakeTransport extends EventEmitter {
  readonly broadcast = BROADCAST;
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
}
