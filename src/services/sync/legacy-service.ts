/**
 * The deprecated endpoints clients still call: GET /events (a stream of
 * room events across the user's rooms, long-polled), GET /initialSync and
 * GET /rooms/{roomId}/initialSync (built from an initial /sync).
 */
import type { Services } from '../../app/services.js';
import type { SyncFilter } from '../../matrix/filter-apply.js';
import type { SyncStore } from '../../storage/sync/sync-store.js';
import type { Notifier } from '../../streams/notifier.js';
import type { WaitSignal } from '../../streams/notifier-types.js';
import { encodeSyncToken, eventsClamp, eventsJoin, type SyncToken } from '../../streams/tokens.js';
import { Errors } from '../../util/errors.js';
import { serializeEvents } from './serialize.js';
import type { SyncService } from './sync-service.js';

const EVENTS_LIMIT = 100;
type Json = Record<string, any>;

export class LegacyEventsService {
  constructor(
    private readonly services: Services,
    private readonly store: SyncStore,
    private readonly notifier: Notifier,
    private readonly sync: SyncService,
  ) {}

  /** GET /events: room events (and typing) after `from`, waiting up to `timeoutMs` for some. */
  async events(userId: string, deviceId: string | null, fromToken: string | undefined, timeoutMs: number, signal?: WaitSignal): Promise<Json> {
    // Worker mode: writes acknowledged by other processes are visible, and a long-poll follows the events rows.
    const workers = this.services.workers;
    if (workers && timeoutMs > 0) await workers.followEvents();
    await workers?.freshPositions();
    if (fromToken) await this.notifier.catchUpTo(fromToken); // worker mode: a token from a process ahead of us
    let from: SyncToken = fromToken ? this.sync.parseSince(fromToken) : this.notifier.currentToken();
    const start = encodeSyncToken(from);
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      const to = this.notifier.currentToken();
      // Events positions per writer (a row of writer W is in (from, to] iff from(W) < position <= to(W)).
      const { joined } = await this.sync.memberships.get(userId, to.events);
      const changes = await this.store.membershipChanges(userId, from.events, to.events);
      const rooms = [...new Set([...joined, ...changes.map((c) => c.roomId)])];
      const stored = await this.store.eventsAcrossRooms(rooms, from.events, to.events, EVENTS_LIMIT);
      const chunk: Json[] = await serializeEvents(this.store, stored, { userId, deviceId, withRoomId: true, shared: this.services.clientEvents });
      const typing = this.services.typingReader.getUpdates(joined, from.typing, to.typing);
      for (const [roomId, ev] of typing) chunk.push({ ...ev, room_id: roomId });
      // A full page ends at its last row: every writer's rows up to it were returned (a writer `from` already had beyond it stays there).
      const end: SyncToken = {
        ...to,
        events: stored.length === EVENTS_LIMIT ? eventsJoin(from.events, eventsClamp(to.events, stored[stored.length - 1]!.streamOrdering)) : to.events,
      };
      const remaining = deadline - Date.now();
      if (chunk.length || remaining <= 0 || signal?.aborted) return { chunk, start, end: encodeSyncToken(end) };
      const why = await this.notifier.waitForChange(userId, joined, to, remaining, signal);
      from = to;
      if (why !== 'change') return { chunk: [], start, end: encodeSyncToken(to) };
    }
  }

  /** GET /initialSync. */
  async initialSync(userId: string, deviceId: string | null, limit: number, archived: boolean): Promise<Json> {
    const filter: SyncFilter = { room: { timeline: { limit }, include_leave: archived } };
    const r = await this.sync.sync({ userId, deviceId, filter, fullState: false, timeoutMs: 0, withRoomId: true });
    const rooms: Json[] = [];
    for (const [membership, section] of [['join', r.rooms?.join], ['leave', r.rooms?.leave]] as const) {
      for (const [roomId, room] of Object.entries((section ?? {}) as Json)) rooms.push(roomInfo(roomId, membership, room, r.next_batch));
    }
    for (const [roomId, room] of Object.entries((r.rooms?.invite ?? {}) as Json)) {
      const self = (room.invite_state?.events ?? []).find((e: Json) => e.type === 'm.room.member' && e.state_key === userId);
      rooms.push({ room_id: roomId, membership: 'invite', invite: self ? { ...self, room_id: roomId } : undefined });
    }
    return {
      end: r.next_batch,
      rooms,
      presence: r.presence?.events ?? [],
      account_data: r.account_data?.events ?? [],
    };
  }

  /** GET /rooms/{roomId}/initialSync: for members (current or past). */
  async roomInitialSync(userId: string, deviceId: string | null, roomId: string, limit: number): Promise<Json> {
    const membership = await this.store.membership(roomId, userId);
    if (membership !== 'join' && membership !== 'leave' && membership !== 'ban') {
      throw Errors.forbidden(`User ${userId} is not in room ${roomId}`);
    }
    const filter: SyncFilter = { room: { rooms: [roomId], timeline: { limit }, include_leave: true } };
    const r = await this.sync.sync({ userId, deviceId, filter, fullState: false, timeoutMs: 0, withRoomId: true });
    const section = membership === 'join' ? 'join' : 'leave';
    const room = r.rooms?.[section]?.[roomId];
    if (!room) throw Errors.forbidden(`User ${userId} is not in room ${roomId}`);
    const info = roomInfo(roomId, membership, room, r.next_batch);
    const typing = room.ephemeral?.events ?? [];
    return { ...info, presence: r.presence?.events ?? [], receipts: typing.filter((e: Json) => e.type === 'm.receipt') };
  }
}

/** RoomInfo of the legacy API: messages and the room's state at the end of them. */
function roomInfo(roomId: string, membership: string, room: Json, end: string): Json {
  const timeline: Json[] = room.timeline?.events ?? [];
  const state = new Map<string, Json>();
  for (const e of [...(room.state?.events ?? []), ...timeline.filter((e) => typeof e.state_key === 'string')]) {
    state.set(`${e.type}\u0000${e.state_key}`, e);
  }
  const joinRule = [...state.values()].find((e) => e.type === 'm.room.join_rules')?.content?.join_rule;
  return {
    room_id: roomId,
    membership,
    messages: { chunk: timeline, start: room.timeline?.prev_batch, end },
    state: [...state.values()],
    visibility: joinRule === 'public' ? 'public' : 'private',
    account_data: room.account_data?.events ?? [],
  };
}
