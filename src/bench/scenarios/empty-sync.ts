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
import { markedContent, type Scenario } from '../context.js';
import { now, pool } from '../util.js';
import { deadlineFrom, latencyFigures } from './common.js';

interface State {
  user: Session;
  since: string;
}

export const emptySyncScenario: Scenario<State> = {
  name: 'empty-sync',
  async prepare(ctx) {
    const user = await ctx.registerUser('esync');
    const rooms = await pool(Array.from({ length: ctx.opts.rooms }), ctx.opts.concurrency, () =>
      ctx.api.createRoom(user, { preset: 'public_chat' }),
    );
    const sends = rooms.flatMap((room) => Array.from({ length: ctx.opts.events }, (_, i) => ({ room, i })));
    await pool(sends, ctx.opts.concurrency, ({ room, i }) =>
      ctx.api.send(user, room, `${ctx.runId}-esync-prep-${room}-${i}`, markedContent(ctx, 'esync-prep', i)),
    );
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
