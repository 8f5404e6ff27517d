/**
 * Shapes of Matrix events as the protocol code sees them.
 *
 * `Pdu` is the wire form of a persistent data unit (room event) as it is
 * hashed, signed and sent over federation. Room versions 1 and 2 carry
 * `event_id` inside the event and reference other events as
 * `[event_id, {sha256}]` pairs; from version 3 the event id is derived from the
 * reference hash and references are plain event ids.
 *
 * `RoomEvent` is the form the rest of the server works with: always with an
 * `event_id`, whatever the room version.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export type EventReference = string | [string, { sha256?: string; [alg: string]: string | undefined }];

export interface Pdu {
  event_id?: string;
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  content: Record<string, any>;
  origin_server_ts: number;
  depth: number;
  prev_events: EventReference[];
  auth_events: EventReference[];
  hashes?: { sha256: string; [alg: string]: string };
  signatures?: Record<string, Record<string, string>>;
  unsigned?: Record<string, any>;
  redacts?: string;
  /** Pre-v11 top-level keys kept by redaction. */
  origin?: string;
  membership?: string;
  prev_state?: unknown[];
  [key: string]: unknown;
}

/** A room event with its id known, as held by storage and services. */
export interface RoomEvent extends Pdu {
  event_id: string;
}

/** Key into a state map: event type and state key. */
export type StateKey = string;

export function stateKey(type: string, stateKeyValue: string): StateKey {
  return `${type}\u0000${stateKeyValue}`;
}

export function splitStateKey(key: StateKey): [string, string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** State of a room at some point: (type, state_key) -> event. */
export type StateMap<E = RoomEvent> = Map<StateKey, E>;

/** State as (type, state_key) -> event id, as state groups store it. */
export type StateIds = Map<StateKey, string>;

export function referenceId(ref: EventReference): string {
  return typeof ref === 'string' ? ref : ref[0];
}

export function prevEventIds(ev: Pdu): string[] {
  return ev.prev_events.map(referenceId);
}

export function authEventIds(ev: Pdu): string[] {
  return ev.auth_events.map(referenceId);
}

/** Memberships as the spec names them. */
export type Membership = 'join' | 'invite' | 'leave' | 'ban' | 'knock';
