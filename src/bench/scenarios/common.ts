import { summarize } from '../stats.js';
import type { BenchContext } from '../context.js';
import { now } from '../util.js';

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
