/**
 * Power levels: reading `m.room.power_levels` (and the defaults that apply
 * when it is missing) from a room state.
 *
 * Used by the authorisation rules and, later, by the HTTP API to explain why
 * an action is forbidden. All functions are pure and only look at the given
 * state map.
 *
 * Value formats (spec, rooms v1–v9 "stringy" and v1–v5 "floaty" power levels):
 * before room version 10 a level may be an integer, a float (truncated) or a
 * string holding a base-10 integer with optional sign, leading zeroes and
 * surrounding whitespace. From room version 10 only integers are valid; the
 * auth rules reject power-level events that contain anything else, so the
 * lenient parser below is safe to use for every version when *reading*.
 */
import type { RoomVersion } from './room-versions.js';
import { stateKey, type RoomEvent, type StateMap } from './types.js';

export const CREATE_KEY = stateKey('m.room.create', '');
export const POWER_LEVELS_KEY = stateKey('m.room.power_levels', '');

/** Level properties of the content with their spec defaults (when a PL event exists). */
export const LEVEL_DEFAULTS = {
  users_default: 0,
  events_default: 0,
  state_default: 50,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
} as const;
export type LevelName = keyof typeof LEVEL_DEFAULTS;
export const LEVEL_NAMES = Object.keys(LEVEL_DEFAULTS) as LevelName[];

/** The `room` notification level defaults to 50. */
export const NOTIFICATION_DEFAULTS: Record<string, number> = { room: 50 };

const STRINGY_INT = /^\s*[+-]?[0-9]+\s*$/;

/**
 * Parses a power-level value. Returns undefined when the value is not a valid
 * level for the room version (integerOnly = room version 10+).
 */
export function parsePowerLevelValue(value: unknown, integerOnly = false): number | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    if (integerOnly) return Number.isInteger(value) ? value : undefined;
    // "floaty" power levels (v1–v5): truncate at the decimal point.
    return Math.trunc(value) || 0; // `|| 0` turns -0 into 0
  }
  if (!integerOnly && typeof value === 'string' && STRINGY_INT.test(value)) {
    const n = Number.parseInt(value.trim(), 10);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Like parsePowerLevelValue but falls back to a default for absent/invalid values. */
function levelOr(value: unknown, fallback: number): number {
  const n = parsePowerLevelValue(value);
  return n === undefined ? fallback : n;
}

function contentOf(ev: RoomEvent | undefined): Record<string, any> | undefined {
  const c = ev?.content;
  return c && typeof c === 'object' && !Array.isArray(c) ? c : undefined;
}

function objectOrEmpty(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * The room creator per the create event: `content.creator` before room
 * version 11, the create event's sender from v11. Without a room version,
 * `content.creator` if present, else the sender.
 */
export function roomCreator(createEvent: RoomEvent | undefined, roomVersion?: RoomVersion): string | undefined {
  if (!createEvent) return undefined;
  if (roomVersion?.implicitRoomCreator) return createEvent.sender;
  const creator = contentOf(createEvent)?.creator;
  if (typeof creator === 'string') return creator;
  return roomVersion ? undefined : createEvent.sender;
}

/**
 * The room creators of room versions with privileged creators (v12+): the
 * create event's sender plus the strings of `content.additional_creators`.
 * Empty for other versions (their creator has no special power once a power
 * levels event exists).
 */
export function roomCreators(createEvent: RoomEvent | undefined, roomVersion?: RoomVersion): Set<string> {
  const out = new Set<string>();
  if (!createEvent || !roomVersion?.privilegedCreators) return out;
  out.add(createEvent.sender);
  const extra = contentOf(createEvent)?.additional_creators;
  if (Array.isArray(extra)) for (const u of extra) if (typeof u === 'string') out.add(u);
  return out;
}

/** Whether `userId` is a room creator with infinite power (v12+). */
export function isPrivilegedCreator(state: StateMap, userId: string, roomVersion?: RoomVersion): boolean {
  return !!roomVersion?.privilegedCreators && roomCreators(state.get(CREATE_KEY), roomVersion).has(userId);
}

/**
 * The power level of a user in the given state. Room creators of v12+ rooms
 * have an infinite level (`Infinity`): every comparison of the rules works
 * unchanged (a creator outranks everyone, and no one outranks a creator).
 */
export function userPowerLevel(state: StateMap, userId: string, roomVersion?: RoomVersion): number {
  if (isPrivilegedCreator(state, userId, roomVersion)) return Infinity;
  const pl = state.get(POWER_LEVELS_KEY);
  if (!pl) {
    // No power levels event: the creator has 100, everyone else 0.
    return roomCreator(state.get(CREATE_KEY), roomVersion) === userId ? 100 : 0;
  }
  const content = contentOf(pl) ?? {};
  const users = objectOrEmpty(content.users);
  if (Object.prototype.hasOwnProperty.call(users, userId)) {
    const n = parsePowerLevelValue(users[userId]);
    if (n !== undefined) return n;
  }
  return levelOr(content.users_default, LEVEL_DEFAULTS.users_default);
}

/** One of the named levels (ban, kick, invite, redact, *_default). */
export function namedLevel(state: StateMap, name: LevelName): number {
  const content = contentOf(state.get(POWER_LEVELS_KEY)) ?? {};
  return levelOr(content[name], LEVEL_DEFAULTS[name]);
}

/** The level needed to send an event of this type (state or message). */
export function requiredPowerLevel(state: StateMap, eventType: string, isState: boolean): number {
  const content = contentOf(state.get(POWER_LEVELS_KEY)) ?? {};
  const events = objectOrEmpty(content.events);
  if (Object.prototype.hasOwnProperty.call(events, eventType)) {
    const n = parsePowerLevelValue(events[eventType]);
    if (n !== undefined) return n;
  }
  return isState
    ? levelOr(content.state_default, LEVEL_DEFAULTS.state_default)
    : levelOr(content.events_default, LEVEL_DEFAULTS.events_default);
}

/** The level needed for a notification key such as `room` (@room). */
export function notificationPowerLevel(state: StateMap, key: string): number {
  const content = contentOf(state.get(POWER_LEVELS_KEY)) ?? {};
  const notifications = objectOrEmpty(content.notifications);
  const n = parsePowerLevelValue(notifications[key]);
  return n ?? NOTIFICATION_DEFAULTS[key] ?? 50;
}

export function canSend(
  state: StateMap,
  userId: string,
  eventType: string,
  isState: boolean,
  roomVersion?: RoomVersion,
): boolean {
  return userPowerLevel(state, userId, roomVersion) >= requiredPowerLevel(state, eventType, isState);
}

export function canInvite(state: StateMap, userId: string, roomVersion?: RoomVersion): boolean {
  return userPowerLevel(state, userId, roomVersion) >= namedLevel(state, 'invite');
}

/** Kick: sender ≥ kick level and target strictly below the sender. */
export function canKick(state: StateMap, userId: string, targetId: string, roomVersion?: RoomVersion): boolean {
  const mine = userPowerLevel(state, userId, roomVersion);
  return mine >= namedLevel(state, 'kick') && userPowerLevel(state, targetId, roomVersion) < mine;
}

/** Ban: sender ≥ ban level and target strictly below the sender. */
export function canBan(state: StateMap, userId: string, targetId: string, roomVersion?: RoomVersion): boolean {
  const mine = userPowerLevel(state, userId, roomVersion);
  return mine >= namedLevel(state, 'ban') && userPowerLevel(state, targetId, roomVersion) < mine;
}

/**
 * Whether `userId` may redact an event sent by `originalSender` (the check a
 * server performs before applying a redaction, rooms v3+ "Handling
 * redactions"): anyone may redact their own events (subject to being able to
 * send m.room.redaction); others need the redact level.
 */
export function canRedact(
  state: StateMap,
  userId: string,
  originalSender: string,
  roomVersion?: RoomVersion,
): boolean {
  if (!canSend(state, userId, 'm.room.redaction', false, roomVersion)) return false;
  if (userId === originalSender) return true;
  return userPowerLevel(state, userId, roomVersion) >= namedLevel(state, 'redact');
}
