/**
 * Typing notifications (client-server API "Typing Notifications").
 *
 * Typing lives only in the writer's memory (DESIGN.md §4): the `typing`
 * stream's positions come from an in-memory StreamIdGenerator. Each change
 * (start, stop, expiry) takes a new position and records it on the room;
 * /sync sends the FULL list of typing users of every room whose last change
 * is in the requested range (clients replace their list with it).
 *
 * `TypingWriter` is the small interface a worker would route to the typing
 * writer over replication; `TypingService` is the local writer and reader.
 */
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import type { ClientEvent } from '../../streams/sync-sources.js';

/** Longest a single typing request may last (a client re-sends while typing). */
export const MAX_TYPING_TIMEOUT_MS = 120_000;
export const DEFAULT_TYPING_TIMEOUT_MS = 30_000;

export interface TypingWriter {
  setTyping(roomId: string, userId: string, typing: boolean, timeoutMs?: number): Promise<void>;
}

interface RoomTyping {
  /** user -> expiry timer (none on a worker-mode reader: the writer expires) */
  users: Map<string, NodeJS.Timeout | undefined>;
  /** Position of the last change in this room. */
  position: number;
}

export class TypingService implements TypingWriter {
  private readonly rooms = new Map<string, RoomTyping>();

  constructor(
    private readonly stream: StreamIdGenerator,
    private readonly notifier: StreamNotifier,
  ) {}

  async setTyping(roomId: string, userId: string, typing: boolean, timeoutMs = DEFAULT_TYPING_TIMEOUT_MS): Promise<void> {
    let room = this.rooms.get(roomId);
    const existing = room?.users.get(userId);
    if (existing) clearTimeout(existing);
    if (!typing) {
      if (!existing) return; // nothing changes
      room!.users.delete(userId);
      this.changed(roomId);
      return;
    }
    if (!room) this.rooms.set(roomId, (room = { users: new Map(), position: 0 }));
    const timer = setTimeout(() => this.expire(roomId, userId), Math.max(0, Math.min(timeoutMs, MAX_TYPING_TIMEOUT_MS)));
    timer.unref();
    room.users.set(userId, timer);
    // A refresh by someone already typing changes nothing clients see.
    if (!existing) this.changed(roomId);
  }

  /** Users typing in a room now. */
  typingUsers(roomId: string): string[] {
    return [...(this.rooms.get(roomId)?.users.keys() ?? [])];
  }

  /**
   * One m.typing event for each of `roomIds` whose typing list changed in
   * (from, to]; from = 0 gives every room where someone types now.
   */
  getUpdates(roomIds: Iterable<string>, from: number, to: number): Map<string, ClientEvent> {
    const out = new Map<string, ClientEvent>();
    for (const roomId of roomIds) {
      const room = this.rooms.get(roomId);
      if (!room) continue;
      // The list sent is the current one; a change after `to` is sent again by the next sync.
      const inRange = from === 0 ? room.users.size > 0 : room.position > from && room.position <= to;
      if (inRange) {
        out.set(roomId, { type: 'm.typing', content: { user_ids: [...room.users.keys()] } });
      }
    }
    return out;
  }

  /** Worker mode (writer): rooms whose typing list changed after `from`, with the current lists. */
  changesSince(from: number): Array<{ roomId: string; userIds: string[]; position: number }> {
    const out: Array<{ roomId: string; userIds: string[]; position: number }> = [];
    for (const [roomId, room] of this.rooms) if (room.position > from) out.push({ roomId, userIds: [...room.users.keys()], position: room.position });
    return out;
  }

  /** Worker mode (reader): a room's typing list as the writer announced it at `position`. */
  applyReplicated(roomId: string, userIds: string[], position: number): void {
    let room = this.rooms.get(roomId);
    if (!room) this.rooms.set(roomId, (room = { users: new Map(), position: 0 }));
    if (position < room.position) return; // older than what we have
    room.users = new Map(userIds.map((u) => [u, undefined]));
    room.position = position;
  }

  /** Worker mode (reader): rooms with someone typing (to empty them when the writer restarted). */
  roomsWithTyping(): string[] {
    return [...this.rooms].filter(([, r]) => r.users.size > 0).map(([id]) => id);
  }

  /** Stops every timer (shutdown). */
  close(): void {
    for (const room of this.rooms.values()) for (const t of room.users.values()) clearTimeout(t);
    this.rooms.clear();
  }

  private expire(roomId: string, userId: string): void {
    const room = this.rooms.get(roomId);
    if (!room?.users.delete(userId)) return;
    this.changed(roomId);
  }

  private changed(roomId: string): void {
    const room = this.rooms.get(roomId)!;
    const pos = this.stream.allocate();
    this.stream.finish(pos);
    // The room entry stays when empty: a sync in range must learn the list emptied.
    room.position = pos;
    this.notifier.notify({ stream: 'typing', position: pos, rooms: [roomId] });
  }
}
