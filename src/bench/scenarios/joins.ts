/**
 * 6. joins: users[0] creates a fresh public room (not timed), then the other
 * N-1 users join it, C at a time; repeated with new rooms within --duration
 * (at least one room, at most 50). joins/s is joins over the time spent
 * joining.
 */
import { ratePerSecond } from '../stats.js';
import type { Scenario } from '../context.js';
import { now, pool } from '../util.js';
import { deadlineFrom, ErrorBudget, latencyFigures } from './common.js';

const MAX_ROOMS = 50;

export const joinsScenario: Scenario = {
  name: 'joins',
  async run(ctx) {
    const owner = ctx.users[0]!;
    const joiners = ctx.users.slice(1);
    const joinMs: number[] = [];
    const budget = new ErrorBudget();
    const deadline = deadlineFrom(ctx);
    let joinTime = 0;
    let rooms = 0;
    do {
      const room = await ctx.api.createRoom(owner, { preset: 'public_chat' });
      rooms++;
      const t0 = now();
      await pool(joiners, ctx.opts.concurrency, async (u) => {
        try {
          const res = await ctx.api.join(u, room);
          joinMs.push(res.ms);
          budget.ok();
        } catch (e) {
          budget.fail(e);
        }
      });
      joinTime += now() - t0;
    } while (now() < deadline && rooms < MAX_ROOMS && !budget.exhausted);
    return {
      metrics: {
        rooms,
        joins: joinMs.length,
        errors: budget.errors,
        joins_per_s: ratePerSecond(joinMs.length, joinTime),
        ...latencyFigures('join', joinMs),
      },
      ops: joinMs.length,
      opsLabel: 'join',
      ok: budget.errors === 0 && joinMs.length === rooms * joiners.length,
      problems: budget.problems(),
    };
  },
};
