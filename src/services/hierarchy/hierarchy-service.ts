/**
 * GET /v1/rooms/{roomId}/hierarchy (client-server API "Spaces"): a
 * depth-first walk of m.space.child state from the given room, over rooms
 * this server knows, returning those the user can see or peek.
 *
 * Children are valid when their content has a non-empty `via` list; they are
 * ordered by `order` (printable ASCII, at most 50 chars), then by the child
 * event's origin_server_ts, then by room id. Pagination tokens are
 * stateless: `<skip>_<suggested_only>_<max_depth>`, and a request whose
 * suggested_only/max_depth differ from its token's is refused.
 */
import { isValidRoomId } from '../../matrix/identifiers.js';
import { splitStateKey } from '../../matrix/types.js';
import { Errors } from '../../util/errors.js';
import type { CachedRoom } from '../rooms/event-creator.js';
import { type RoomInfo, type RoomInfoReader } from './room-info.js';

export const DEFAULT_MAX_DEPTH = 50;
const MAX_LIMIT = 100;
const DEFAULT_LIMIT = 50;
/** Rooms visited at most per request (protects against huge trees). */
const MAX_VISITED = 2000;

export interface ChildEdge {
  roomId: string;
  order?: string;
  ts: number;
  suggested: boolean;
  stripped: { type: string; state_key: string; content: Record<string, any>; sender: string; origin_server_ts: number };
}

function validOrder(o: unknown): o is string {
  return typeof o === 'string' && o.length <= 50 && /^[\x20-\x7E]*$/.test(o);
}

/** The valid m.space.child edges of a room, in the spec's order. */
export function spaceChildren(room: CachedRoom): ChildEdge[] {
  const out: ChildEdge[] = [];
  for (const [k, ev] of room.state) {
    const [type, sk] = splitStateKey(k);
    if (type !== 'm.space.child' || !isValidRoomId(sk)) continue;
    const c = (ev.content ?? {}) as Record<string, any>;
    if (!Array.isArray(c.via) || c.via.length === 0) continue;
    out.push({
      roomId: sk,
      ...(validOrder(c.order) ? { order: c.order } : {}),
      ts: ev.origin_server_ts,
      suggested: c.suggested === true,
      stripped: { type, state_key: sk, content: c, sender: ev.sender, origin_server_ts: ev.origin_server_ts },
    });
  }
  out.sort((a, b) => {
    if (a.order !== undefined && b.order === undefined) return -1;
    if (a.order === undefined && b.order !== undefined) return 1;
    if (a.order !== undefined && b.order !== undefined && a.order !== b.order) return a.order < b.order ? -1 : 1;
    if (a.ts !== b.ts) return a.ts - b.ts;
    return a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0;
  });
  return out;
}

export type HierarchyRoom = RoomInfo & { children_state: ChildEdge['stripped'][] };

export class HierarchyService {
  constructor(private readonly info: RoomInfoReader) {}

  async hierarchy(
    userId: string,
    roomId: string,
    o: { suggestedOnly: boolean; maxDepth?: number; limit?: number; from?: string },
  ): Promise<{ rooms: HierarchyRoom[]; next_batch?: string }> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    const maxDepth = Math.min(o.maxDepth ?? DEFAULT_MAX_DEPTH, DEFAULT_MAX_DEPTH);
    const limit = Math.min(o.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
    let skip = 0;
    if (o.from !== undefined) {
      const m = /^(\d{1,9})_([01])_(\d{1,4})$/.exec(o.from);
      if (!m) throw Errors.invalidParam('Unknown pagination token');
      if ((m[2] === '1') !== o.suggestedOnly || Number(m[3]) !== maxDepth) {
        throw Errors.invalidParam('suggested_only and max_depth cannot change on paginated requests');
      }
      skip = Number(m[1]);
    }
    const root = await this.info.room(roomId);
    if (!root || !(await this.info.accessible(root, userId))) throw Errors.forbidden('You are not allowed to view this room.');

    // Depth-first, children in order; a room appears once.
    const rooms: HierarchyRoom[] = [];
    const seen = new Set<string>([roomId]);
    const stack: Array<{ room: CachedRoom; depth: number }> = [{ room: root, depth: 0 }];
    let index = 0;
    let more = false;
    while (stack.length && seen.size <= MAX_VISITED) {
      const { room, depth } = stack.pop()!;
      let children = spaceChildren(room);
      if (o.suggestedOnly) children = children.filter((c) => c.suggested);
      if (index >= skip) {
        if (rooms.length >= limit) {
          more = true;
          break;
        }
        rooms.push({ ...(await this.info.describe(room)), children_state: children.map((c) => c.stripped) });
      }
      index++;
      if (depth >= maxDepth) continue;
      const next: Array<{ room: CachedRoom; depth: number }> = [];
      for (const c of children) {
        if (seen.has(c.roomId)) continue;
        const child = await this.info.room(c.roomId);
        // Unknown here (no federation) or not visible to the user: left out.
        if (!child || !(await this.info.accessible(child, userId))) continue;
        seen.add(c.roomId);
        next.push({ room: child, depth: depth + 1 });
      }
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!);
    }
    const out: { rooms: HierarchyRoom[]; next_batch?: string } = { rooms };
    if (more) out.next_batch = `${skip + rooms.length}_${o.suggestedOnly ? 1 : 0}_${maxDepth}`;
    return out;
  }
}
