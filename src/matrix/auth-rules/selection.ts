/**
 * Auth events selection (server-server API, "Auth events selection") and the
 * checks the rules make on an event's `auth_events` list (rule "Considering
 * the event's auth_events", rooms v1+).
 */
import type { RoomVersion } from '../room-versions.js';
import { stateKey, type RoomEvent, type StateMap } from '../types.js';
import { ALLOW, deny, isObject, type AuthResult } from './util.js';

export interface StatePair {
  type: string;
  stateKey: string;
}

/**
 * The (type, state_key) pairs an event's auth_events must be drawn from.
 * Empty for m.room.create. Rooms v1–v11 always select the create event;
 * from v12 it MUST NOT be selected (the room id names it).
 */
export function authEventsSelection(
  eventType: string,
  eventStateKey: string | undefined,
  sender: string,
  content: Record<string, any> | undefined,
  roomVersion: RoomVersion,
): StatePair[] {
  if (eventType === 'm.room.create') return [];
  const out: StatePair[] = [];
  // At most five pairs: a linear search finds duplicates.
  const add = (type: string, sk: string): void => {
    for (const p of out) if (p.type === type && p.stateKey === sk) return;
    out.push({ type, stateKey: sk });
  };
  if (!roomVersion.roomIdFromCreateEvent) add('m.room.create', '');
  add('m.room.power_levels', '');
  add('m.room.member', sender);
  if (eventType === 'm.room.member' && typeof eventStateKey === 'string') {
    const c = isObject(content) ? content : {};
    const membership = c.membership;
    add('m.room.member', eventStateKey);
    if (membership === 'join' || membership === 'invite' || (membership === 'knock' && roomVersion.knock)) {
      add('m.room.join_rules', '');
    }
    if (membership === 'invite' && isObject(c.third_party_invite)) {
      const token = isObject(c.third_party_invite.signed) ? c.third_party_invite.signed.token : undefined;
      if (typeof token === 'string') add('m.room.third_party_invite', token);
    }
    if (
      membership === 'join' &&
      roomVersion.restrictedJoin &&
      typeof c.join_authorised_via_users_server === 'string'
    ) {
      add('m.room.member', c.join_authorised_via_users_server);
    }
  }
  return out;
}

/** The selection as state keys (see types.stateKey). */
export function authEventsSelectionKeys(ev: RoomEvent, roomVersion: RoomVersion): string[] {
  return authEventsSelection(ev.type, ev.state_key, ev.sender, ev.content, roomVersion).map((p) =>
    stateKey(p.type, p.stateKey),
  );
}

/**
 * The state keys the rules consult for an event: the auth events selection,
 * plus (v12+) the create event, which the selection leaves out but the rules
 * still read (found through the room id).
 */
export function authRuleStateKeys(ev: RoomEvent, roomVersion: RoomVersion): string[] {
  const keys = authEventsSelectionKeys(ev, roomVersion);
  if (roomVersion.roomIdFromCreateEvent && ev.type !== 'm.room.create') keys.unshift(stateKey('m.room.create', ''));
  return keys;
}

/**
 * Rule 2 (v12: rule 3) of every room version: the event's auth_events
 * (already fetched, in any order) must have no duplicate (type, state_key),
 * only selected pairs, no rejected events, include the create event (before
 * v12; from v12 it must not be there), and all be in the same room.
 * `isRejected` tells whether an auth event was itself rejected.
 */
export function checkAuthEventsList(
  event: RoomEvent,
  authEvents: readonly RoomEvent[],
  roomVersion: RoomVersion,
  isRejected?: (eventId: string) => boolean,
): AuthResult {
  if (event.type === 'm.room.create') {
    return authEvents.length === 0 ? ALLOW : deny('m.room.create must have no auth_events');
  }
  const allowed = new Set(authEventsSelectionKeys(event, roomVersion));
  const seen = new Set<string>();
  let hasCreate = false;
  for (const a of authEvents) {
    if (typeof a.state_key !== 'string') return deny(`auth event ${a.event_id} is not a state event`);
    const k = stateKey(a.type, a.state_key);
    if (seen.has(k)) return deny(`duplicate auth event for (${a.type}, ${a.state_key})`);
    seen.add(k);
    if (!allowed.has(k)) return deny(`auth event (${a.type}, ${a.state_key}) is not in the auth events selection`);
    if (isRejected?.(a.event_id)) return deny(`auth event ${a.event_id} was rejected`);
    if (a.room_id !== event.room_id) return deny(`auth event ${a.event_id} belongs to another room`);
    if (a.type === 'm.room.create') hasCreate = true;
  }
  if (!hasCreate && !roomVersion.roomIdFromCreateEvent) return deny('no m.room.create event among the auth events');
  return ALLOW;
}

/** Builds the state map the rules run against from a list of auth events. */
export function authStateFromEvents(authEvents: Iterable<RoomEvent>): StateMap {
  const state: StateMap = new Map();
  for (const a of authEvents) {
    if (typeof a.state_key === 'string') state.set(stateKey(a.type, a.state_key), a);
  }
  return state;
}

/**
 * The part of a (possibly large) state map that the rules for `event` can
 * look at. Keys missing from `state` are filled from `fallback` (used by
 * state resolution's iterative auth checks: the event's own auth events).
 */
export function selectAuthState(
  event: RoomEvent,
  state: StateMap,
  roomVersion: RoomVersion,
  fallback?: StateMap,
): StateMap {
  const out: StateMap = new Map();
  for (const k of authRuleStateKeys(event, roomVersion)) {
    const e = state.get(k) ?? fallback?.get(k);
    if (e) out.set(k, e);
  }
  return out;
}
