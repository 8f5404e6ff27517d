import { summarize } from '../stats.js';
import type { Session } from '../client.js';
import { markedContent, type BenchContext } from '../context.js';
import { now, pool } from '../util.js';

/** `${prefix}_p50_ms`, `_p95_ms`, `_p99_ms`, `_max_ms` of a latency sample (ms). */
export function latencyFigures(prefix: string, values: readonly number[]): Record<string, number> {
  const s = summarize(values);
  return {
    [`${prefix}_p50_ms`]: s.p50,
    [`${prefix}_p95_ms`]: s.p95,
    [`${prefix}_p99_ms`]: s.p99,
    [`${prefix}_max_ms`]: s.max,
  };
}

/**
 * Run `worker(i)` in `concurrency` parallel loops until the deadline or
 * until `shouldStop()`; each loop iteration is one operation.
 */
export async function loopUntil(
  concurrency: number,
  deadline: number,
  shouldStop: () => boolean,
  worker: (loop: number, iteration: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let it = 0; now() < deadline && !shouldStop(); it++) await worker(loop, it);
    }),
  );
}

export function deadlineFrom(ctx: BenchContext): number {
  return now() + ctx.opts.durationS * 1000;
}

/** Stops a scenario after too many failures in a row (a broken target should not spin for the whole duration). */
export class ErrorBudget {
  errors = 0;
  private streak = 0;
  firstError: string | undefined;
  constructor(private readonly maxStreak = 50) {}
  ok(): void {
    this.streak = 0;
  }
  fail(e: unknown): void {
    this.errors++;
    this.streak++;
    this.firstError ??= (e as Error).message;
  }
  get exhausted(): boolean {
    return this.streak >= this.maxStreak;
  }
  problems(): string[] {
    return this.errors ? [`${this.errors} failed requests (first: ${this.firstError})`] : [];
  }
}

/**
 * The senders' loop of the send and delivery scenarios: `concurrency` loops,
 * each sending as its own user (loop i as users[i mod n]) into a random bench
 * room, until the deadline, `maxEvents` sends or the error budget is spent.
 * `send` does one send (and its bookkeeping); a throw counts against `budget`.
 * Returns the milliseconds from the start to the last acknowledged send.
 */
export async function sendLoop(
  ctx: BenchContext,
  budget: ErrorBudget,
  send: (sender: Session, room: string, seq: number, loop: number, iteration: number) => Promise<void>,
): Promise<number> {
  let seq = 0;
  const t0 = now();
  let lastAck = t0;
  await loopUntil(
    ctx.opts.concurrency,
    deadlineFrom(ctx),
    () => seq >= ctx.opts.maxEvents || budget.exhausted,
    async (loop, it) => {
      const mySeq = seq++;
      const sender = ctx.users[loop % ctx.users.length]!;
      const room = ctx.rng.pick(ctx.rooms);
      try {
        await send(sender, room, mySeq, loop, it);
        lastAck = now();
        budget.ok();
      } catch (e) {
        budget.fail(e);
      }
    },
  );
  return lastAck - t0;
}

/**
 * A fresh user (`tag`) who creates M (`--rooms`) public rooms and sends K
 * (`--events`) messages in each, C at a time (not timed): what initial-sync
 * and empty-sync read.
 */
export async function userInRooms(ctx: BenchContext, tag: string): Promise<{ user: Session; rooms: string[] }> {
  const user = await ctx.registerUser(tag);
  const rooms = await pool(Array.from({ length: ctx.opts.rooms }), ctx.opts.concurrency, () => ctx.api.createRoom(user, { preset: 'public_chat' }));
  const sends = rooms.flatMap((room) => Array.from({ length: ctx.opts.events }, (_, i) => ({ room, i })));
  await pool(sends, ctx.opts.concurrency, ({ room, i }) =>
    ctx.api.send(user, room, `${ctx.runId}-${tag}-prep-${room}-${i}`, markedContent(ctx, `${tag}-prep`, i)),
  );
  return { user, rooms };
}

/**
 * Open-loop sending at `rate` events/s until the deadline or `maxEvents`:
 * a send starts every 1/rate s whether or not earlier ones were answered.
 * Returns the milliseconds from the start to the last acknowledged send.
 */
export async function pacedSends(
  ctx: BenchContext,
  rate: number,
  senders: readonly Session[],
  budget: ErrorBudget,
  send: (sender: Session, room: string, seq: number) => Promise<void>,
): Promise<number> {
  const t0 = now();
  const deadline = deadlineFrom(ctx);
  const inflight: Promise<void>[] = [];
  let lastAck = t0;
  for (let seq = 0; seq < ctx.opts.maxEvents && !budget.exhausted; seq++) {
    const due = t0 + (seq * 1000) / rate;
    if (due >= deadline) break;
    const wait = due - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sender = senders[seq % senders.length]!;
    const room = ctx.rng.pick(ctx.rooms);
    inflight.push(
      send(sender, room, seq).then(
        () => {
          lastAck = now();
          budget.ok();
        },
        (e: unknown) => budget.fail(e),
      ),
    );
  }
  await Promise.all(inflight);
  return lastAck - t0;
}
