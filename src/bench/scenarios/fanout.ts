/**
 * 3. fanout: one message at a time into a room of all N users, who all
 * long-poll /sync; the time until every member has it. Repeats within
 * --duration (at least once, at most 50 messages).
 */
import { DeliveryLedger } from '../accounting.js';
import { markedContent, type Scenario } from '../context.js';
import { summarize } from '../stats.js';
import { SyncReceiver } from '../sync-receiver.js';
import { now, pool, waitFor } from '../util.js';
import { deadlineFrom, latencyFigures } from './common.js';

const MAX_MESSAGES = 50;

export const fanoutScenario: Scenario = {
  name: 'fanout',
  async run(ctx, _state, round) {
    const tag = `fanout-${round}`;
    const room = ctx.rooms[0]!;
    const ledger = new DeliveryLedger();
    const receivers = ctx.users.map(
      (u) =>
        new SyncReceiver(ctx.api, u, {
          rooms: [room],
          onEvent: (eventId, m, _room, at) => {
            if (m.run === ctx.runId && m.scenario === tag) ledger.arrive(u.userId, eventId, at);
          },
        }),
    );
    await pool(receivers, ctx.opts.concurrency, (r) => r.prepare());
    receivers.forEach((r) => r.start());
    const everyone = ctx.users.map((u) => u.userId);

    const fromAck: number[] = [];
    const fromSend: number[] = [];
    const problems: string[] = [];
    const deadline = deadlineFrom(ctx);
    let sent = 0;
    let timedOut = 0;
    while (sent === 0 || (now() < deadline && sent < MAX_MESSAGES)) {
      const sender = ctx.users[sent % ctx.users.length]!;
      const started = now();
      let eventId: string;
      try {
        const res = await ctx.api.send(sender, room, `${ctx.runId}-${tag}-${sent}`, markedContent(ctx, tag, sent));
        eventId = res.json.event_id;
      } catch (e) {
        problems.push(`send failed: ${(e as Error).message}`);
        break;
      }
      const ackAt = now();
      ledger.expect(eventId, ackAt, everyone);
      sent++;
      if (!(await waitFor(() => ledger.hasReachedAll(eventId), ctx.opts.drainS * 1000, 2))) {
        timedOut++;
        continue;
      }
      const last = ledger.lastFirstArrival(eventId);
      fromAck.push(Math.max(0, last - ackAt));
      fromSend.push(last - started);
    }
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all(receivers.map((r) => r.stop()));
    const acc = ledger.account();
    if (acc.missing) problems.push(`${acc.missing} deliveries missing (${timedOut} messages never reached everyone)`);
    if (acc.duplicates) problems.push(`${acc.duplicates} duplicate deliveries`);
    if (acc.unexpected) problems.push(`${acc.unexpected} unexpected deliveries`);
    return {
      metrics: {
        members: everyone.length,
        messages: sent,
        reached_all: fromAck.length,
        expected: acc.expected,
        delivered: acc.delivered,
        missing: acc.missing,
        duplicates: acc.duplicates,
        ...latencyFigures('all_have_it', fromAck),
        all_have_it_from_send_p50_ms: summarize(fromSend).p50,
      },
      ops: sent,
      opsLabel: 'sent event',
      ok: acc.exactlyOnce && sent > 0 && problems.length === 0,
      problems,
    };
  },
};
