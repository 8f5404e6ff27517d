/** 1. send: C concurrent senders into M rooms; acknowledged events/s and /send latency. */
import { markedContent, type Scenario } from '../context.js';
import { ratePerSecond } from '../stats.js';
import { now } from '../util.js';
import { deadlineFrom, ErrorBudget, latencyFigures, loopUntil } from './common.js';

export const sendScenario: Scenario = {
  name: 'send',
  async run(ctx, _state, round) {
    const latencies: number[] = [];
    const budget = new ErrorBudget();
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
        const txn = `${ctx.runId}-send-${round}-${loop}-${it}`;
        try {
          const res = await ctx.api.send(sender, room, txn, markedContent(ctx, 'send', mySeq, 16 + ctx.rng.int(96)));
          latencies.push(res.ms);
          lastAck = now();
          budget.ok();
        } catch (e) {
          budget.fail(e);
        }
      },
    );
    const elapsed = lastAck - t0;
    return {
      metrics: {
        sent: latencies.length,
        errors: budget.errors,
        elapsed_ms: elapsed,
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
