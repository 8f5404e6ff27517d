/** 7. versions and whoami: request throughput of two cheap endpoints with C concurrency. */
import type { Response } from '../client.js';
import type { BenchContext, Scenario } from '../context.js';
import { ratePerSecond } from '../stats.js';
import { now } from '../util.js';
import { deadlineFrom, ErrorBudget, latencyFigures, loopUntil } from './common.js';

async function hammer(ctx: BenchContext, call: (loop: number) => Promise<Response>) {
  const latencies: number[] = [];
  const budget = new ErrorBudget();
  const t0 = now();
  await loopUntil(ctx.opts.concurrency, deadlineFrom(ctx), () => budget.exhausted, async (loop) => {
    try {
      latencies.push((await call(loop)).ms);
      budget.ok();
    } catch (e) {
      budget.fail(e);
    }
  });
  const elapsed = now() - t0;
  return {
    metrics: {
      requests: latencies.length,
      errors: budget.errors,
      requests_per_s: ratePerSecond(latencies.length, elapsed),
      ...latencyFigures('request', latencies),
    },
    ops: latencies.length,
    opsLabel: 'request',
    ok: budget.errors === 0 && latencies.length > 0,
    problems: budget.problems(),
  };
}

export const versionsScenario: Scenario = {
  name: 'versions',
  run: (ctx) => hammer(ctx, () => ctx.api.versions()),
};

export const whoamiScenario: Scenario = {
  name: 'whoami',
  run: (ctx) =>
    hammer(ctx, async (loop) => {
      const u = ctx.users[loop % ctx.users.length]!;
      const res = await ctx.api.whoami(u);
      if (res.json?.user_id !== u.userId) throw new Error(`whoami said ${res.json?.user_id}, expected ${u.userId}`);
      return res;
    }),
};
