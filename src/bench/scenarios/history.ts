/**
 * 5. history: /messages dir=b pagination (100 per page) through a room of
 * H messages (prepared once, not timed), from the room's newest point to its
 * start; repeated whole passes within --duration (at least one).
 */
import type { Session } from '../client.js';
import { markedContent, markerOf, type Scenario } from '../context.js';
import { ratePerSecond } from '../stats.js';
import { now, pool } from '../util.js';
import { deadlineFrom, latencyFigures } from './common.js';

const PAGE = 100;
const MAX_PAGES_PER_PASS = 100_000;

interface State {
  user: Session;
  room: string;
  /** Token for "now" in that room, from /sync next_batch (which /messages accepts as `from`). */
  from: string;
}

export const historyScenario: Scenario<State> = {
  name: 'history',
  async prepare(ctx) {
    const user = ctx.users[0]!;
    const room = await ctx.api.createRoom(user, { preset: 'public_chat' });
    await pool(Array.from({ length: ctx.opts.history }), ctx.opts.concurrency, (_, i) =>
      ctx.api.send(user, room, `${ctx.runId}-history-prep-${i}`, markedContent(ctx, 'history', i)),
    );
    const filter = await ctx.api.uploadFilter(user, { room: { rooms: [room], timeline: { limit: 1 } } });
    const s = await ctx.api.sync(user, { filter, timeout: 0 });
    return { user, room, from: s.json.next_batch };
  },
  async run(ctx, state) {
    const pageMs: number[] = [];
    const problems: string[] = [];
    const deadline = deadlineFrom(ctx);
    let events = 0;
    let passes = 0;
    let firstPassMarked = -1;
    const t0 = now();
    do {
      let from: string | undefined = state.from;
      let marked = 0;
      for (let p = 0; p < MAX_PAGES_PER_PASS && from; p++) {
        const res = await ctx.api.messages(state.user, state.room, { from, dir: 'b', limit: PAGE });
        pageMs.push(res.ms);
        const chunk = res.json.chunk ?? [];
        events += chunk.length;
        for (const e of chunk) if (markerOf(e.content)?.run === ctx.runId) marked++;
        // No `end` (or an empty chunk) means there is nothing further back.
        if (chunk.length === 0 || !res.json.end || res.json.end === from) break;
        from = res.json.end;
      }
      passes++;
      if (firstPassMarked < 0) firstPassMarked = marked;
    } while (now() < deadline);
    const elapsed = now() - t0;
    if (firstPassMarked !== ctx.opts.history)
      problems.push(`pagination found ${firstPassMarked} of ${ctx.opts.history} messages`);
    return {
      metrics: {
        room_messages: firstPassMarked,
        passes,
        pages: pageMs.length,
        events,
        events_per_s: ratePerSecond(events, elapsed),
        ...latencyFigures('page', pageMs),
      },
      ops: pageMs.length,
      opsLabel: 'page',
      ok: problems.length === 0,
      problems,
    };
  },
};
