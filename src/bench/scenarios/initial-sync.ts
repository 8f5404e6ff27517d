/**
 * 4. initial-sync: a fresh user in M rooms with K messages each (prepared
 * once, not timed). Each round times its first, unfiltered /sync (time and
 * body size), then sends one message and times an incremental /sync from the
 * first one's next_batch.
 */
import type { Session } from '../client.js';
import { markedContent, markerOf, type Scenario } from '../context.js';
import { userInRooms } from './common.js';

interface State {
  user: Session;
  rooms: string[];
}

export const initialSyncScenario: Scenario<State> = {
  name: 'initial-sync',
  prepare: (ctx) => userInRooms(ctx, 'isync'),
  async run(ctx, state, round) {
    const problems: string[] = [];
    const first = await ctx.api.sync(state.user, { timeout: 0 });
    const joined = first.json.rooms?.join ?? {};
    const roomsSeen = state.rooms.filter((r) => r in joined).length;
    const timelineEvents = Object.values(joined).reduce((a, r) => a + (r.timeline?.events?.length ?? 0), 0);
    if (roomsSeen !== state.rooms.length) problems.push(`initial sync showed ${roomsSeen} of ${state.rooms.length} rooms`);

    const room = state.rooms[round % state.rooms.length]!;
    const sent = await ctx.api.send(state.user, room, `${ctx.runId}-isync-inc-${round}`, markedContent(ctx, `isync-inc-${round}`, round));
    const inc = await ctx.api.sync(state.user, { since: first.json.next_batch, timeout: 0 });
    const incEvents = Object.values(inc.json.rooms?.join ?? {}).flatMap((r) => r.timeline?.events ?? []);
    const gotNew = incEvents.some((e) => e.event_id === sent.json.event_id || markerOf(e.content)?.scenario === `isync-inc-${round}`);
    if (!gotNew) problems.push('incremental sync did not contain the new message');
    return {
      metrics: {
        rooms: roomsSeen,
        events_per_room: ctx.opts.events,
        initial_ms: first.ms,
        initial_bytes: first.bytes,
        initial_timeline_events: timelineEvents,
        incremental_ms: inc.ms,
        incremental_bytes: inc.bytes,
        incremental_timeline_events: incEvents.length,
      },
      ops: 2,
      opsLabel: 'sync',
      ok: problems.length === 0,
      problems,
    };
  },
};
