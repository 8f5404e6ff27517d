/**
 * 1. send: C concurrent senders into M rooms; acknowledged events/s and /send
 * latency. With `--send-rate R` the sends are paced instead (open loop, R
 * events/s, round robin over the users): every shape then does the same work
 * per second, which is how CPU per event is compared between shapes.
 */
import { markedContent, type Scenario } from '../context.js';
import { ratePerSecond } from '../stats.js';
import { ErrorBudget, latencyFigures, pacedSends, sendLoop } from './common.js';

export const sendScenario: Scenario = {
  name: 'send',
  async run(ctx, _state, round) {
    const latencies: number[] = [];
    const budget = new ErrorBudget();
    const rate = ctx.opts.sendRate;
    const elapsed =
      rate > 0
        ? await pacedSends(ctx, rate, ctx.users, budget, async (sender, room, seq) => {
            const res = await ctx.api.send(sender, room, `${ctx.runId}-send-${round}-p-${seq}`, markedContent(ctx, 'send', seq, 16 + ctx.rng.int(96)));
            latencies.push(res.ms);
          })
        : await sendLoop(ctx, budget, async (sender, room, seq, loop, it) => {
            const txn = `${ctx.runId}-send-${round}-${loop}-${it}`;
            const res = await ctx.api.send(sender, room, txn, markedContent(ctx, 'send', seq, 16 + ctx.rng.int(96)));
            latencies.push(res.ms);
          });
    return {
      metrics: {
        sent: latencies.length,
        errors: budget.errors,
        elapsed_ms: elapsed,
        ...(rate > 0 ? { rate_per_s: rate } : {}),
        events_per_s: ratePerSecond(latencies.length, elapsed),
        ...latencyFigures('send', latencies),
      },
      ops: latencies.length,
      opsLabel: 'sent event',
      ok: budget.errors === 0 && latencies.length > 0,
      problems: budget.problems(),
    };
  },
};
