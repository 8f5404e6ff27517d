/**
 * The rooms store: the event graph, state groups, current state and
 * membership (DESIGN.md §3), plus aliases and the public room list.
 *
 * One implementation (sql-store.ts) serves both engines through the Db
 * interface. Writes go through `persistEvents`, which keeps every derived
 * table in step inside the same transaction as the event rows.
 */
import type { Membership, RoomEvent, StateIds } from '../../matrix/types.js';
import type { Queryable } from '../db.js';
import type { WalkBound } from './event-sql.js';

/** Unsigned keys computed when a state event is persisted. */
export interface UnsignedExtra {
  replaces_state?: string;
  prev_content?: Record<string, unknown>;
  prev_sender?: string;
}

/** An event as stored, with its positions and status. */
export interface StoredEvent {
  event: RoomEvent;
  roomId: string;
  streamOrdering: number;
  topologicalOrdering: number;
  outlier: boolean;
  rejectedReason: string | null;
  softFailed: boolean;
  /** Id of the m.room.redaction that redacted this event (applied), if any. */
  redactedBy: string | null;
  unsignedExtra: UnsignedExtra | null;
}

/** A page of `paginateForViewer`. */
export interface ViewerPage {
  events: StoredEvent[];
  /** The viewer's device's transaction ids of the page's events (event id → txn id). */
  txnIds: Map<string, string>;
  /** Ids of the page's events that some event relates to. */
  related: Set<string>;
}

/** `readAccess`: a user's access to a room and the timelines history visibility needs. */
export interface RoomReadAccess {
  member?: MemberRow;
  /** Content of the current m.room.history_visibility event, if any. */
  historyVisibility?: Record<string, any>;
  memberships: MembershipChange[];
  visibilityHistory: Array<{ streamOrdering: number; eventId: string; content: Record<string, any> }>;
}

/** A new state group to write along with an event. */
export interface NewStateGroup {
  id: number;
  /** Base group for a delta; null for a snapshot. */
  prevGroup: number | null;
  deltaDepth: number;
  /** All state for a snapshot, or the changed entries for a delta. */
  entries: StateIds;
}

export interface EventToPersist {
  event: RoomEvent;
  /**
   * `event` as JSON text, when the caller has it already (the event creator:
   * its canonical JSON, assembled while signing); else the store encodes it.
   */
  json?: string;
  streamOrdering: number;
  /** Group holding the state after this event. */
  stateGroup: number;
  newStateGroup?: NewStateGroup;
  unsignedExtra?: UnsignedExtra;
  /**
   * Client transaction id, for idempotent sends (keyed with its scope, the
   * endpoint path it was used on) and unsigned.transaction_id.
   */
  txn?: { userId: string; deviceId: string; scope: string; txnId: string };
  /** Target of an m.room.redaction that is to be applied. */
  redacts?: string;
  /** For the create event: the rooms row. */
  createRoom?: { roomVersion: string; creator: string };
  /** Stored as rejected: kept, but changes no state. */
  rejectedReason?: string;
  /**
   * State events that become current along with this event although they are
   * older (state resolution of several forks picked them). Applied to
   * current_state_events / current_membership before the event itself.
   */
  currentStateFix?: Array<{ event: RoomEvent; streamOrdering: number }>;
}

export interface PersistBatch {
  roomId: string;
  events: EventToPersist[];
  /** The room's forward extremities after the batch. */
  forwardExtremities: string[];
  /** Rows of other capabilities (push actions) written in the same transaction as the events. */
  extraRows?: ExtraRows[];
}

/**
 * Rows another capability writes in the transaction of a batch of events.
 * In a group commit the rows of every batch with the same `write` are
 * handed to it in one call.
 */
export interface ExtraRows<T = any> {
  write: (tx: Queryable, rows: T[]) => Promise<void>;
  rows: T[];
}

export interface RoomRow {
  roomId: string;
  roomVersion: string;
  creator: string | null;
  isPublic: boolean;
  createdTs: number;
}

export interface MemberRow {
  roomId: string;
  userId: string;
  membership: Membership;
  eventId: string;
  streamOrdering: number;
}

export interface MembershipChange {
  eventId: string;
  roomId: string;
  userId: string;
  sender: string;
  membership: Membership;
  streamOrdering: number;
}

/** A position between events in topological order: after event (topo, stream). */
export interface TopoPosition {
  topo: number;
  stream: number;
}

/** The subset of a RoomEventFilter the store applies in SQL. */
export interface EventQueryFilter {
  types?: string[];
  notTypes?: string[];
  senders?: string[];
  notSenders?: string[];
  containsUrl?: boolean;
}

export interface PublicRoomRow {
  roomId: string;
  joinedMembers: number;
}

export interface RoomStore {
  // ---- writes ----
  /** Persists a batch of events of one room and everything derived from them, atomically. */
  persistEvents(batch: PersistBatch): Promise<void>;
  /**
   * Persists batches of several rooms (at most one batch per room) in ONE
   * transaction: a group commit, so that one durable commit covers the
   * events of every room that had requests in flight. All or nothing.
   */
  persistEventBatches?(batches: readonly PersistBatch[]): Promise<void>;
  /** Highest state group id in use (to seed the allocator). */
  maxStateGroupId(): Promise<number>;

  // ---- events ----
  getEvent(eventId: string): Promise<StoredEvent | undefined>;
  /** Batch lookup; missing ids are absent from the map. */
  getEvents(eventIds: readonly string[]): Promise<Map<string, StoredEvent>>;
  /** Timeline events with stream_ordering in (from, to], ascending or descending (sync). */
  getRoomEventsByStream(roomId: string, opts: { from: number; to: number; limit: number; dir: 'f' | 'b'; filter?: EventQueryFilter }): Promise<StoredEvent[]>;
  /**
   * Topological pagination. dir 'b': events at or before `from` (newest
   * first); dir 'f': events after `from` (oldest first). `to` bounds the walk
   * the same way (exclusive on the far side).
   */
  paginate(roomId: string, opts: { from: TopoPosition | null; to?: TopoPosition | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter }): Promise<StoredEvent[]>;
  /**
   * `paginate` for one reader (/messages), in the same single statement
   * (its bounds may also be stream positions, resolved by the statement):
   * also the reader's transaction ids of the page's events (when a device is
   * given) and which of them other events relate to (m.thread, m.replace or
   * m.reference; a superset of what bundled aggregations show).
   */
  paginateForViewer(
    roomId: string,
    opts: { from: WalkBound | null; to?: WalkBound | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter },
    viewer: { userId: string; deviceId?: string | null },
  ): Promise<ViewerPage>;
  /** `readAccess` and `paginateForViewer` for the same user, in one statement. */
  readAccessAndPage(
    roomId: string,
    opts: { from: WalkBound | null; to?: WalkBound | null; dir: 'f' | 'b'; limit: number; filter?: EventQueryFilter },
    viewer: { userId: string; deviceId?: string | null },
  ): Promise<{ access: RoomReadAccess; page: ViewerPage }>;
  /** Topological position of the newest event with stream_ordering <= stream (null if none). */
  topoPositionAtStream(roomId: string, stream: number): Promise<TopoPosition | null>;
  /**
   * Timeline events closest to a timestamp in the given direction, in order
   * (f: origin_server_ts >= ts ascending; b: <= ts descending; ties by
   * stream_ordering), up to `limit`; `after` (the last event of the previous
   * batch) continues the walk.
   */
  eventsAtTimestamp(roomId: string, ts: number, dir: 'f' | 'b', limit: number, after?: { ts: number; stream: number }): Promise<StoredEvent[]>;
  getForwardExtremities(roomId: string): Promise<string[]>;
  maxStreamOrdering(): Promise<number>;

  // ---- state ----
  /** Group holding the state after each event. */
  getStateGroups(eventIds: readonly string[]): Promise<Map<string, number>>;
  getStateGroupInfo(group: number): Promise<{ prevGroup: number | null; deltaDepth: number } | undefined>;
  /** Full state of a group (resolving its delta chain). */
  getStateIdsForGroup(group: number): Promise<StateIds>;
  getCurrentStateIds(roomId: string): Promise<StateIds>;
  /** Current state events, optionally only some types. */
  getCurrentStateEvents(roomId: string, types?: string[]): Promise<StoredEvent[]>;
  getCurrentStateEvent(roomId: string, type: string, stateKey: string): Promise<StoredEvent | undefined>;
  /** Every non-rejected state event of one type/state_key in a room, oldest first (history visibility). */
  stateHistory(roomId: string, type: string, stateKey: string): Promise<Array<{ streamOrdering: number; eventId: string; content: Record<string, any> }>>;

  // ---- rooms and membership ----
  getRoom(roomId: string): Promise<RoomRow | undefined>;
  getMembership(roomId: string, userId: string): Promise<MemberRow | undefined>;
  getMembers(roomId: string, opts?: { membership?: Membership[]; notMembership?: Membership[] }): Promise<MemberRow[]>;
  /** Rooms of a user by current membership (excluding forgotten rooms). */
  getRoomsForUser(userId: string, memberships: Membership[]): Promise<MemberRow[]>;
  /** Joined member counts per room. */
  joinedCounts(roomIds: readonly string[]): Promise<Map<string, number>>;
  /**
   * What reading a room takes for one user, in one statement: their current
   * membership, the room's current history_visibility content, their
   * membership events in the room and the room's history_visibility events
   * (each oldest first), as `getMembership`, `getCurrentStateEvent`,
   * `membershipHistory` and `stateHistory` give them.
   */
  readAccess(roomId: string, userId: string): Promise<RoomReadAccess>;
  /** A user's membership events in a room, oldest first. */
  membershipHistory(roomId: string, userId: string): Promise<MembershipChange[]>;
  /** Membership events about a user with stream_ordering in (from, to]. */
  membershipChangesForUser(userId: string, from: number, to: number): Promise<MembershipChange[]>;
  /** Marks a room forgotten for a user (reset when the membership changes). */
  forgetRoom(userId: string, roomId: string): Promise<void>;
  isForgotten(userId: string, roomId: string): Promise<boolean>;

  // ---- transaction ids ----
  /** The event sent by this device with this txn id on the endpoint path `scope` (see `txnScope`). */
  getTxnEvent(userId: string, deviceId: string, scope: string, txnId: string): Promise<string | undefined>;
  /** txn ids of the given events sent by this user's device. */
  getTxnIds(eventIds: readonly string[], userId: string, deviceId: string): Promise<Map<string, string>>;

  // ---- aliases and directory ----
  createAlias(alias: string, roomId: string, creator: string): Promise<boolean>;
  getAlias(alias: string): Promise<{ roomId: string; creator: string } | undefined>;
  deleteAlias(alias: string): Promise<boolean>;
  getAliasesForRoom(roomId: string): Promise<string[]>;
  setRoomPublic(roomId: string, isPublic: boolean): Promise<void>;
  /** Public rooms ordered by joined members (desc) then room id. */
  listPublicRooms(opts: { offset: number; limit: number; roomIds?: string[] }): Promise<PublicRoomRow[]>;
  countPublicRooms(): Promise<number>;
}
