/**
 * History visibility for /sync timelines (client-server API "Room History
 * Visibility"), for rooms where the user was not joined throughout the
 * range (initial sync, newly joined, left rooms). The walk starts from the
 * state before the timeline and follows state changes inside it.
 */
import type { StoredEvent } from '../../storage/rooms/store.js';

export interface VisibilityStart {
  /** m.room.history_visibility before the first event ('shared' when unset). */
  historyVisibility: string;
  /** The user's membership before the first event ('leave' when none). */
  membership: string;
}

/**
 * Keeps the events the user may see. `joinedAtEnd`: the user is joined at the
 * end of the range (then `shared` history is visible throughout).
 */
export function filterVisible(userId: string, events: StoredEvent[], start: VisibilityStart, joinedAtEnd: boolean): StoredEvent[] {
  // Membership and visibility in force at each event (state before it).
  const at: Array<{ hv: string; membership: string }> = [];
  let hv = start.historyVisibility;
  let membership = start.membership;
  for (const e of events) {
    at.push({ hv, membership });
    const ev = e.event;
    if (ev.type === 'm.room.history_visibility' && ev.state_key === '') hv = String(ev.content?.history_visibility ?? 'shared');
    if (ev.type === 'm.room.member' && ev.state_key === userId) membership = String(ev.content?.membership ?? 'leave');
  }
  // `shared`: visible when the user is joined at the event or at any later point.
  let joinedLater = joinedAtEnd;
  const keep = new Array<boolean>(events.length);
  for (let i = events.length - 1; i >= 0; i--) {
    const { hv: h, membership: m } = at[i]!;
    if (m === 'join') joinedLater = true;
    const ev = events[i]!.event;
    const own = ev.type === 'm.room.member' && ev.state_key === userId;
    if (own) {
      keep[i] = true;
      if (ev.content?.membership === 'join') joinedLater = true;
      continue;
    }
    keep[i] =
      h === 'world_readable' ||
      (h === 'shared' && (m === 'join' || joinedLater)) ||
      (h === 'invited' && (m === 'join' || m === 'invite')) ||
      m === 'join';
  }
  return events.filter((_, i) => keep[i]);
}
