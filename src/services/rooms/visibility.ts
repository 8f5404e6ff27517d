/**
 * History visibility (client-server API "Room History Visibility"), computed
 * per batch: the user's membership timeline in the room and the room's
 * history_visibility timeline are read once (two small queries), then every
 * event is placed on them by its stream position.
 *
 *   world_readable  anyone may see the event;
 *   shared          members may see it, and so may users who joined at any
 *                   point after it (so users who left still see history up
 *                   to their leave, but nothing after);
 *   invited         users invited or joined at the event;
 *   joined          users joined at the event.
 * A user always sees their own membership events.
 */
import type { RoomStore, StoredEvent } from '../../storage/rooms/store.js';

export type HistoryVisibility = 'world_readable' | 'shared' | 'invited' | 'joined';
const ORDER: HistoryVisibility[] = ['joined', 'invited', 'shared', 'world_readable'];

function parseVisibility(v: unknown): HistoryVisibility {
  return typeof v === 'string' && (ORDER as string[]).includes(v) ? (v as HistoryVisibility) : 'shared';
}

interface Timeline<T> {
  at: number[];
  value: T[];
}

/** Value of the last entry with position <= pos (binary search). */
function valueAt<T>(t: Timeline<T>, pos: number, fallback: T, strict = false): T {
  let lo = 0;
  let hi = t.at.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (strict ? t.at[mid]! < pos : t.at[mid]! <= pos) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? fallback : t.value[found]!;
}

/**
 * The filter a user's membership events in a room and the room's
 * history_visibility events (each oldest first, as `membershipHistory` and
 * `stateHistory` give them) make: the events the user may see, in order.
 */
export function visibilityFilter(
  userId: string | undefined,
  members: ReadonlyArray<{ streamOrdering: number; membership: string }>,
  hv: ReadonlyArray<{ streamOrdering: number; content: Record<string, any> }>,
): (events: readonly StoredEvent[]) => StoredEvent[] {
  const memberTl: Timeline<string> = { at: members.map((m) => m.streamOrdering), value: members.map((m) => m.membership) };
  const hvTl: Timeline<HistoryVisibility> = {
    at: hv.map((h) => h.streamOrdering),
    value: hv.map((h) => parseVisibility(h.content.history_visibility)),
  };
  let lastJoin = -1;
  for (const m of members) if (m.membership === 'join') lastJoin = m.streamOrdering;

  return (events) =>
    events.filter((se) => {
      const ev = se.event;
      const pos = se.streamOrdering;
      if (userId && ev.type === 'm.room.member' && ev.state_key === userId) return true;
      // Visibility in force for the event: the state before it; for a
      // history_visibility event, the more permissive of before and after.
      let vis = valueAt(hvTl, pos, 'shared' as HistoryVisibility, true);
      if (ev.type === 'm.room.history_visibility' && ev.state_key === '') {
        const after = parseVisibility((ev.content as any)?.history_visibility);
        if (ORDER.indexOf(after) > ORDER.indexOf(vis)) vis = after;
      }
      if (vis === 'world_readable') return true;
      if (!userId) return false;
      const membership = valueAt(memberTl, pos, 'leave');
      if (membership === 'join') return true;
      if (vis === 'invited') return membership === 'invite';
      if (vis === 'shared') return lastJoin > pos;
      return false;
    });
}

export class VisibilityChecker {
  constructor(private readonly store: RoomStore) {}

  /** The events of one room the user may see, in the given order. */
  async filter(userId: string | undefined, roomId: string, events: readonly StoredEvent[]): Promise<StoredEvent[]> {
    if (!events.length) return [];
    const [members, hv] = await Promise.all([
      userId ? this.store.membershipHistory(roomId, userId) : Promise.resolve([]),
      this.store.stateHistory(roomId, 'm.room.history_visibility', ''),
    ]);
    return visibilityFilter(userId, members, hv)(events);
  }

  /** Whether the room's current history visibility is world_readable. */
  async isWorldReadable(roomId: string): Promise<boolean> {
    const ev = await this.store.getCurrentStateEvent(roomId, 'm.room.history_visibility', '');
    return (ev?.event.content as any)?.history_visibility === 'world_readable';
  }
}
