/**
 * GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]] and
 * GET /v1/rooms/{roomId}/threads (client-server API "Relationships",
 * "Threading").
 *
 * Relations paginate in topological order with the same tokens as
 * /messages (services/rooms/pagination.ts); `recurse` follows relations of
 * relations up to MAX_RECURSION levels. The threads list orders thread roots
 * by their latest reply; its tokens are that reply's stream position.
 */
import type { StoredEvent, RoomStore, TopoPosition } from '../../storage/rooms/store.js';
import type { RoomsExtraStore } from '../../storage/rooms-extra/store.js';
import { Errors } from '../../util/errors.js';
import type { ClientEvent, ClientEventSerializer, Viewer } from '../rooms/client-events.js';
import { formatTopoToken } from '../rooms/pagination.js';
import type { RoomReadService } from '../rooms/room-reads.js';
import type { VisibilityChecker } from '../rooms/visibility.js';

export const MAX_RECURSION = 3;
const MAX_LIMIT = 1000;

export interface RelationsDeps {
  store: RoomsExtraStore;
  roomStore: RoomStore;
  roomReads: RoomReadService;
  serializer: ClientEventSerializer;
  visibility: VisibilityChecker;
}

export interface RelationsQuery {
  relType?: string;
  eventType?: string;
  from?: string;
  to?: string;
  dir: 'f' | 'b';
  limit: number;
  recurse: boolean;
}

export class RelationsService {
  constructor(private readonly d: RelationsDeps) {}

  /** The parent must exist in the room and be visible to the viewer (404 otherwise). */
  private async visibleEvent(viewer: Viewer, roomId: string, eventId: string): Promise<StoredEvent> {
    await this.d.roomReads.access(viewer.userId, roomId);
    const se = await this.d.roomStore.getEvent(eventId);
    if (!se || se.roomId !== roomId || se.outlier || se.rejectedReason) throw Errors.notFound('Event not found');
    if (!(await this.d.visibility.filter(viewer.userId, roomId, [se])).length) throw Errors.notFound('Event not found');
    return se;
  }

  async relations(viewer: Viewer, roomId: string, eventId: string, q: RelationsQuery) {
    await this.visibleEvent(viewer, roomId, eventId);
    const limit = Math.min(Math.max(q.limit, 1), MAX_LIMIT);
    const from = q.from ? await this.position(roomId, q.from) : null;
    const to = q.to ? await this.position(roomId, q.to) : null;

    // With recurse: relations of relations, up to MAX_RECURSION levels below the event.
    let parents = [eventId];
    let depth = 1;
    if (q.recurse) {
      const seen = new Set(parents);
      let frontier = parents;
      for (let level = 1; level < MAX_RECURSION; level++) {
        const next = (await this.d.store.childIds(roomId, frontier)).filter((id) => !seen.has(id));
        if (!next.length) break;
        next.forEach((id) => seen.add(id));
        frontier = next;
        // Level `level` exists; whether level+1 does shows in the final query.
        if ((await this.d.store.childIds(roomId, next)).length) depth = level + 1;
      }
      parents = [...seen];
    }
    const raw = await this.d.store.relations(roomId, parents, {
      ...(q.relType ? { relType: q.relType } : {}),
      ...(q.eventType ? { eventType: q.eventType } : {}),
      from,
      to,
      dir: q.dir,
      limit,
    });
    const visible = await this.d.visibility.filter(viewer.userId, roomId, raw);
    const chunk = await this.d.serializer.serialize(visible, viewer);
    const out: { chunk: ClientEvent[]; next_batch?: string; prev_batch?: string; recursion_depth?: number } = { chunk };
    if (raw.length === limit) {
      const last = raw[raw.length - 1]!;
      out.next_batch = formatTopoToken(
        q.dir === 'b' ? { topo: last.topologicalOrdering, stream: last.streamOrdering - 1 } : { topo: last.topologicalOrdering, stream: last.streamOrdering },
      );
    }
    if (q.from) out.prev_batch = q.from;
    if (q.recurse) out.recursion_depth = depth;
    return out;
  }

  async threads(viewer: Viewer, roomId: string, o: { include: 'all' | 'participated'; from?: string; limit: number }) {
    await this.d.roomReads.access(viewer.userId, roomId);
    const limit = Math.min(Math.max(o.limit, 1), MAX_LIMIT);
    let before: number | undefined;
    if (o.from !== undefined) {
      if (!/^\d{1,16}$/.test(o.from)) throw Errors.invalidParam('Invalid from token');
      before = Number(o.from);
    }
    const rows = await this.d.store.threads(roomId, {
      limit,
      ...(before !== undefined ? { before } : {}),
      ...(o.include === 'participated' ? { participant: viewer.userId } : {}),
    });
    const roots = await this.d.roomStore.getEvents(rows.map((r) => r.rootId));
    const ordered = rows
      .map((r) => roots.get(r.rootId))
      .filter((e): e is StoredEvent => !!e && e.roomId === roomId && !e.outlier && !e.rejectedReason);
    const visible = await this.d.visibility.filter(viewer.userId, roomId, ordered);
    const chunk = await this.d.serializer.serialize(visible, viewer);
    const out: { chunk: ClientEvent[]; next_batch?: string } = { chunk };
    if (rows.length === limit) out.next_batch = String(rows[rows.length - 1]!.latest);
    return out;
  }

  /** A /messages token or a /sync token (whose events position maps to the room's topology). */
  private async position(roomId: string, token: string): Promise<TopoPosition> {
    return this.d.roomReads.toPosition(roomId, token);
  }
}
