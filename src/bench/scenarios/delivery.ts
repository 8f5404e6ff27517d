/**
 * 2. delivery: the first N users (`--delivery-receivers`) long-poll /sync
 * (filtered to the bench rooms' messages) while events are sent at a paced
 * `--delivery-rate` (events/s); time from send ack to arrival at each
 * receiver, and exactly-once accounting over all (event, receiver) pairs.
 * Rate 0 saturates instead: C senders send as fast as they can.
 */
import { DeliveryLedger } from '../accounting.js';
import { markedContent, type Scenario } from '../context.js';
import { ratePerSecond } from '../stats.js';
import { SyncReceiver } from '../sync-receiver.js';
import { now, pool, waitFor } from '../util.js';
import { ErrorBudget, latencyFigures, pacedSends, sendLoop } from './common.js';

export const deliveryScenario: Scenario = {
  name: 'delivery',
  async run(ctx, _state, round) {
    const tag = `delivery-${round}`;
    const ledger = new DeliveryLedger();
    const rate = ctx.opts.deliveryRate;
    const n = ctx.opts.deliveryReceivers;
    const listening = n > 0 && n < ctx.users.length ? ctx.users.slice(0, n) : ctx.users;
    const receivers = listening.map(
      (u) =>
        new SyncReceiver(ctx.api, u, {
          rooms: ctx.rooms,
          onEvent: (eventId, m, _room, at) => {
            if (m.run === ctx.runId && m.scenario === tag) ledger.arrive(u.userId, eventId, at);
          },
        }),
    );
    await pool(receivers, ctx.opts.concurrency, (r) => r.prepare());
    receivers.forEach((r) => r.start());
    // Every user is a member of every bench room, so each event must reach every receiver.
    const everyone = listening.map((u) => u.userId);

    const budget = new ErrorBudget();
    const sendLatencies: number[] = [];
    const sendElapsed =
      rate > 0
        ? await pacedSends(ctx, rate, ctx.users, budget, async (sender, room, seq) => {
            const res = await ctx.api.send(sender, room, `${ctx.runId}-${tag}-p-${seq}`, markedContent(ctx, tag, seq));
            ledger.expect(res.json.event_id, now(), everyone);
            sendLatencies.push(res.ms);
          })
        : await sendLoop(ctx, budget, async (sender, room, seq, loop, it) => {
            const res = await ctx.api.send(sender, room, `${ctx.runId}-${tag}-${loop}-${it}`, markedContent(ctx, tag, seq));
            ledger.expect(res.json.event_id, now(), everyone);
            sendLatencies.push(res.ms);
          });
    const drainStart = now();
    await waitFor(() => ledger.isComplete(), ctx.opts.drainS * 1000);
    const drainMs = now() - drainStart;
    // Keep listening a little longer so late duplicates are seen too.
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all(receivers.map((r) => r.stop()));

    if (process.env.MYELIN_BENCH_TRACE) {
      const { appendFileSync } = await import('node:fs');
      appendFileSync(process.env.MYELIN_BENCH_TRACE, ledger.trace().map((t) => JSON.stringify({ round, ...t })).join('\n') + '\n');
    }
    const acc = ledger.account();
    const limited = receivers.reduce((a, r) => a + r.limitedGaps, 0);
    const syncErrors = receivers.reduce((a, r) => a + r.errors, 0);
    const problems = budget.problems();
    if (acc.missing) problems.push(`${acc.missing} deliveries missing`);
    if (acc.duplicates) problems.push(`${acc.duplicates} duplicate deliveries`);
    if (acc.unexpected) problems.push(`${acc.unexpected} unexpected deliveries`);
    if (limited) problems.push(`${limited} limited (gapped) sync timelines`);
    if (syncErrors) problems.push(`${syncErrors} failed syncs (last: ${receivers.find((r) => r.lastError)?.lastError})`);
    return {
      metrics: {
        sent: acc.events,
        receivers: receivers.length,
        rate_per_s: rate,
        expected: acc.expected,
        delivered: acc.delivered,
        missing: acc.missing,
        duplicates: acc.duplicates,
        unexpected: acc.unexpected,
        limited_timelines: limited,
        sync_errors: syncErrors,
        send_errors: budget.errors,
        events_per_s: ratePerSecond(acc.events, sendElapsed),
        // Long-poll answers per sent event over all receivers: the receivers' share of an event is 1 each;
        // more means answers that carried none of the bench's messages (woken by something else).
        syncs_per_event: acc.events > 0 ? receivers.reduce((a, r) => a + r.syncs, 0) / acc.events : 0,
        deliveries_per_s: ratePerSecond(acc.delivered, sendElapsed + drainMs),
        drain_ms: drainMs,
        ...latencyFigures('delivery', ledger.latencies()),
        ...latencyFigures('send', sendLatencies),
      },
      ops: acc.events,
      opsLabel: 'sent event',
      ok: acc.exactlyOnce && acc.events > 0 && budget.errors === 0,
      problems,
    };
  },
};
