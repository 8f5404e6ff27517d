/**
 * The Matrix authorisation rules for room versions 1–12 (rooms/v1 … v12,
 * fragments v1/v3/v8-auth-rules), as one pure function over a state map.
 *
 * Room version 12: the create event has no `room_id` and is not among other
 * events' auth_events; the rules still need it, so the state passed here must
 * hold it under (m.room.create, "") (the caller finds it from the room id,
 * see `authRuleStateKeys`), and rule 2 checks that the room id names it.
 * Room creators have an infinite power level (power-levels.ts).
 *
 * `checkAuth` looks ONLY at the given state: the caller passes either the
 * state built from the event's auth_events (`authStateFromEvents`), the room
 * state before the event, or the current state (soft-fail check). Only the
 * (type, state_key) pairs of the auth events selection are consulted.
 *
 * Not done here (done by the caller / other modules):
 *  - rule "Considering the event's auth_events" needs the auth event list
 *    itself: use `checkAuthEventsList` (duplicates, selection, rejected
 *    entries, create present, same room). `checkAuth` still rejects a state
 *    without a create event and selected events from another room.
 *  - signatures and hashes; the v8+ "validly signed by the homeserver of
 *    join_authorised_via_users_server" rule is checked through the optional
 *    `isSignedByServer` callback, or by the receipt path;
 *  - event size limits and canonical-JSON validity.
 */
import { isValidHistoricalUserId } from './identifiers.js';
import { namedLevel, requiredPowerLevel, userPowerLevel, CREATE_KEY } from './power-levels.js';
import { roomIdMatchesCreateEvent } from './room-ids.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';
import type { RoomEvent, StateMap } from './types.js';
import { checkMemberEvent, type MemberAuthOptions } from './auth-rules/member.js';
import { checkPowerLevelsEvent } from './auth-rules/power-levels-change.js';
import { authEventsSelectionKeys } from './auth-rules/selection.js';
import {
  ALLOW,
  deny,
  isObject,
  membershipOf,
  redactsOf,
  serverOf,
  usesDomainRedactionRule,
  type AuthResult,
} from './auth-rules/util.js';

export type { AuthResult } from './auth-rules/util.js';
export type { MemberAuthOptions as AuthOptions } from './auth-rules/member.js';
export {
  authEventsSelection,
  authEventsSelectionKeys,
  authRuleStateKeys,
  authStateFromEvents,
  checkAuthEventsList,
  selectAuthState,
  type StatePair,
} from './auth-rules/selection.js';
export { ed25519Verifier, type SignatureVerifier } from './auth-rules/third-party-invite.js';

export function checkAuth(
  event: RoomEvent,
  authState: StateMap,
  roomVersion: RoomVersion,
  options: MemberAuthOptions = {},
): AuthResult {
  const rv = roomVersion;

  // 1. m.room.create
  if (event.type === 'm.room.create') return checkCreate(event, rv);

  // 2. (partly) a create event must be present; selected events must be in this room.
  const create = authState.get(CREATE_KEY);
  if (!create) return deny('no m.room.create event in the auth state');
  // v12 rule 2: the room id is the create event's id with `!` for `$`.
  if (rv.roomIdFromCreateEvent && !roomIdMatchesCreateEvent(event.room_id, create.event_id)) {
    return deny("room id does not name the room's m.room.create event");
  }
  for (const k of authEventsSelectionKeys(event, rv)) {
    const e = authState.get(k);
    if (e && e.room_id !== event.room_id) return deny(`auth event ${e.event_id} belongs to another room`);
  }

  // 3. m.federate = false keeps other servers out.
  if (isObject(create.content) && create.content['m.federate'] === false) {
    if (serverOf(event.sender) !== serverOf(create.sender)) return deny('room is not federated (m.federate is false)');
  }

  // 4 (v1–v5). m.room.aliases: only the server named by the state_key.
  if (rv.specialCaseAliasesAuth && event.type === 'm.room.aliases') {
    if (typeof event.state_key !== 'string') return deny('m.room.aliases needs a state_key');
    if (serverOf(event.sender) !== event.state_key) return deny("m.room.aliases state_key must be the sender's server");
    return ALLOW;
  }

  // 5/4. m.room.member
  if (event.type === 'm.room.member') return checkMemberEvent(event, authState, rv, options);

  // 6/5. Everything else needs the sender to be joined.
  if (membershipOf(authState, event.sender) !== 'join') return deny('sender is not joined to the room');

  const senderLevel = userPowerLevel(authState, event.sender, rv);

  // 7/6. m.room.third_party_invite: invite level.
  if (event.type === 'm.room.third_party_invite') {
    return senderLevel >= namedLevel(authState, 'invite') ? ALLOW : deny('sender lacks the power level to invite');
  }

  // 8/7. The event type's required level.
  const isState = typeof event.state_key === 'string';
  const required = requiredPowerLevel(authState, event.type, isState);
  if (required > senderLevel) {
    return deny(`sending ${event.type} needs power level ${required}, sender has ${senderLevel}`);
  }

  // 9/8. State keys that are user ids are reserved to that user.
  if (isState && event.state_key!.startsWith('@') && event.state_key !== event.sender) {
    return deny("state_key is another user's id");
  }

  // 10/9. m.room.power_levels
  if (event.type === 'm.room.power_levels') return checkPowerLevelsEvent(event, authState, rv);

  // 11 (v1–v2 only). m.room.redaction: redact level, or same domain as the redacted event.
  if (event.type === 'm.room.redaction' && usesDomainRedactionRule(rv)) {
    if (senderLevel >= namedLevel(authState, 'redact')) return ALLOW;
    const redacts = redactsOf(event, rv);
    const target = serverOf(redacts);
    if (target !== undefined && target === serverOf(event.event_id)) return ALLOW;
    return deny('sender lacks the redact level and the redacted event is from another server');
  }

  return ALLOW;
}

function checkCreate(event: RoomEvent, rv: RoomVersion): AuthResult {
  if (event.prev_events.length > 0) return deny('m.room.create must have no prev_events');
  if (rv.roomIdFromCreateEvent) {
    // v12: the room id is derived from this event; it carries none itself.
    if ('room_id' in event) return deny('m.room.create must not have a room_id in this room version');
  } else {
    const roomServer = serverOf(event.room_id);
    if (roomServer === undefined || roomServer !== serverOf(event.sender)) {
      return deny("room id's server does not match the sender's");
    }
  }
  const content = isObject(event.content) ? event.content : {};
  if (content.room_version !== undefined) {
    if (typeof content.room_version !== 'string' || !getRoomVersion(content.room_version)) {
      return deny(`unknown room_version ${JSON.stringify(content.room_version)}`);
    }
  }
  if (rv.privilegedCreators && content.additional_creators !== undefined) {
    const extra = content.additional_creators;
    if (!Array.isArray(extra) || !extra.every((u) => typeof u === 'string' && isValidHistoricalUserId(u))) {
      return deny('additional_creators must be a list of user ids');
    }
  }
  if (!rv.implicitRoomCreator && !('creator' in content)) return deny('m.room.create content has no creator');
  return ALLOW;
}
