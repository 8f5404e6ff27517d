/**
 * 9. empty-sync: a fresh user in M rooms with K messages each (prepared once,
 * not timed, with one initial /sync to get a token). Each round sends
 * incremental `/sync?since=<that token>&timeout=0` one after the other until
 * the duration ends; nothing happens in the user's rooms meanwhile, so no answer may
 * hold timeline events. The runner's server CPU per sync is the figure
 * (issue target: at most 1 ms of server CPU for an incremental sync with
 * nothing new).
 */
import type { Session } from '../client.js';
import type { Scenario } from '../context.js';
import { now } from '../util.js';
import { deadlineFrom, latencyFigures, userInRooms } from './common.js';

interface State {
  user: Session;
  since: string;
}

export const emptySyncScenario: Scenario<State> = {
  name: 'empty-sync',
  async prepare(ctx) {
    const { user } = await userInRooms(ctx, 'esync');
    const first = await ctx.api.sync(user, { timeout: 0 });
    return { user, since: first.json.next_batch };
  },
  async run(ctx, state) {
    const problems: string[] = [];
    const ms: number[] = [];
    const deadline = deadlineFrom(ctx);
    let notEmpty = 0;
    do {
      const r = await ctx.api.sync(state.user, { since: state.since, timeout: 0 });
      ms.push(r.ms);
      // Timeline events are what must not appear (a server may still list rooms, with empty timelines).
      const events = Object.values((r.json.rooms?.join ?? {}) as Record<string, { timeline?: { events?: unknown[] } }>).reduce(
        (n, room) => n + (room.timeline?.events?.length ?? 0),
        0,
      );
      if (events > 0) notEmpty++;
    } while (now() < deadline);
    if (notEmpty > 0) problems.push(`${notEmpty} of ${ms.length} syncs with nothing new returned timeline events`);
    return {
      metrics: { syncs: ms.length, ...latencyFigures('sync', ms) },
      ops: ms.length,
      opsLabel: 'sync',
      ok: problems.length === 0,
      problems,
    };
  },
};
