/**
 * The sources /sync reads beside room events. Each is provided by the
 * capability that owns the stream and set on `services`; when one is not
 * wired, /sync leaves its section out. Ranges are (from, to]: rows with
 * from < position <= to; an initial sync reads from 0.
 */

/** An event as clients see it in /sync (ephemeral, account data, to-device, presence). */
export interface ClientEvent {
  type: string;
  content: Record<string, any>;
  sender?: string;
  room_id?: string;
  [key: string]: unknown;
}

export interface UnreadCounts {
  notification_count: number;
  highlight_count: number;
  threads: Record<string, { notification_count: number; highlight_count: number }>;
}

export interface ReceiptsSource {
  /** One m.receipt event per room with receipts in range; m.read.private only the requester's own. */
  getReceiptsForRooms(roomIds: string[], from: number, to: number, userId: string): Promise<Map<string, ClientEvent>>;
}

export interface AccountDataSource {
  /** Global and per-room account data (including m.tag) changed in range. */
  getUpdates(userId: string, from: number, to: number): Promise<{ global: ClientEvent[]; rooms: Map<string, ClientEvent[]> }>;
  getIgnoredUsers(userId: string): Promise<Set<string>>;
}

export interface ToDeviceSource {
  getMessages(userId: string, deviceId: string, from: number, to: number, limit: number): Promise<{ events: ClientEvent[]; lastPosition: number }>;
  /** Called when a later `since` acknowledges delivery up to `position`. */
  deleteUpTo(userId: string, deviceId: string, position: number): Promise<void>;
}

export type PresenceState = 'online' | 'offline' | 'unavailable';

export interface PresenceSource {
  /** m.presence events of users sharing a room with `userId` (and the user's own). */
  getUpdates(userId: string, from: number, to: number): Promise<ClientEvent[]>;
  /** A /sync request with `set_presence` (or its default, online). */
  userSyncing(userId: string, setPresence: PresenceState | undefined): Promise<void>;
}

export interface PushSource {
  getUnreadCounts(userId: string, roomId: string): Promise<UnreadCounts>;
  /** Optional batch form used by /sync when present. */
  /**
   * `membershipAt`: the stream ordering of the user's current membership
   * event in each room, when the caller knows it; the user's join point in a
   * room can only change with a new membership event, so it may be cached
   * against that position.
   */
  getUnreadCountsForRooms?(userId: string, roomIds: string[], membershipAt?: ReadonlyMap<string, number>, at?: UnreadCountsAt): Promise<Map<string, UnreadCounts>>;
}

/** The positions a /sync response covers, for counts that may be cached against them. */
export interface UnreadCountsAt {
  /** The receipts stream position (every receipt at or below it has committed). */
  receipts: number;
  /** An events position every event at or below which has committed; absent: count afresh. */
  events?: number;
  /**
   * Several events writers, `to` ahead of `events` on some: per room, a
   * higher position to count that room at instead — its newest event the
   * response covers (a room's events all come from its writer, so every
   * event of the room at or below it has committed, and none the response
   * covers lies above it). Rooms not named count at `events`.
   */
  roomEvents?: ReadonlyMap<string, number>;
  /** Of `roomIds`, those with events in (from, the response's position]; undefined when not known. */
  roomsWithEvents?: (roomIds: string[], from: number) => Promise<Set<string> | undefined>;
}

export interface PushRulesSource {
  /** The m.push_rules account data event when the user's rules changed in range. */
  getUpdates(userId: string, from: number, to: number): Promise<ClientEvent | undefined>;
}

export interface E2eeSyncSource {
  getDeviceListChanges(userId: string, from: number, to: number): Promise<{ changed: string[]; left: string[] }>;
  getOneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>>;
  getUnusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]>;
}
