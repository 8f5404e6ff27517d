/**
 * Auth rule for m.room.power_levels events (rule 10 in v1–v2, 9 in v3+).
 *
 * Validation of value formats: from room version 10 every level must be an
 * integer. Before v10 levels may also be integer strings (and floats, which
 * are truncated). The spec's pre-v10 rule only validates `users`; we also
 * reject other values that cannot be read as a level at all (e.g. "abc" or an
 * object), because such an event has no meaningful levels to compare.
 */
import { CREATE_KEY, LEVEL_NAMES, parsePowerLevelValue, POWER_LEVELS_KEY, roomCreators, userPowerLevel } from '../power-levels.js';
import type { RoomVersion } from '../room-versions.js';
import type { RoomEvent, StateMap } from '../types.js';
import { ALLOW, deny, isObject, looksLikeUserId, type AuthResult } from './util.js';

function validateContent(content: Record<string, any>, rv: RoomVersion): string | undefined {
  const intOnly = rv.integerPowerLevels;
  for (const name of LEVEL_NAMES) {
    if (content[name] !== undefined && parsePowerLevelValue(content[name], intOnly) === undefined) {
      return `power level "${name}" is not ${intOnly ? 'an integer' : 'a valid level'}`;
    }
  }
  for (const map of ['events', 'notifications'] as const) {
    const v = content[map];
    if (v === undefined) continue;
    if (!isObject(v)) return `"${map}" is not an object`;
    for (const [k, lvl] of Object.entries(v)) {
      if (parsePowerLevelValue(lvl, intOnly) === undefined) return `"${map}.${k}" is not ${intOnly ? 'an integer' : 'a valid level'}`;
    }
  }
  const users = content.users;
  if (users !== undefined) {
    if (!isObject(users)) return '"users" is not an object';
    for (const [u, lvl] of Object.entries(users)) {
      if (!looksLikeUserId(u)) return `"users" key ${JSON.stringify(u)} is not a user id`;
      if (parsePowerLevelValue(lvl, intOnly) === undefined) return `"users.${u}" is not ${intOnly ? 'an integer' : 'an integer or integer string'}`;
    }
  }
  return undefined;
}

function level(v: unknown): number | undefined {
  return v === undefined ? undefined : parsePowerLevelValue(v);
}

function mapOf(v: unknown): Record<string, unknown> {
  return isObject(v) ? v : {};
}

export function checkPowerLevelsEvent(event: RoomEvent, state: StateMap, rv: RoomVersion): AuthResult {
  const content = isObject(event.content) ? event.content : {};
  const invalid = validateContent(content, rv);
  if (invalid) return deny(invalid);
  // v12 rule 10.4: room creators cannot be given a level (theirs is infinite).
  if (rv.privilegedCreators && isObject(content.users)) {
    for (const u of roomCreators(state.get(CREATE_KEY), rv)) {
      if (Object.prototype.hasOwnProperty.call(content.users, u)) return deny(`room creator ${u} cannot be listed in "users"`);
    }
  }

  const previous = state.get(POWER_LEVELS_KEY);
  if (!previous) return ALLOW;
  const old = isObject(previous.content) ? previous.content : {};
  const senderLevel = userPowerLevel(state, event.sender, rv);

  // Top-level levels: any alteration needs both old and new value ≤ sender's level.
  for (const name of LEVEL_NAMES) {
    const before = level(old[name]);
    const after = level(content[name]);
    if (before === after) continue;
    if (before !== undefined && before > senderLevel) {
      return deny(`cannot change "${name}" from ${before}: above sender's level ${senderLevel}`);
    }
    if (after !== undefined && after > senderLevel) {
      return deny(`cannot set "${name}" to ${after}: above sender's level ${senderLevel}`);
    }
  }

  // events (and from v6 notifications): same rule, per entry.
  const maps = rv.limitNotificationsPowerLevels ? (['events', 'notifications'] as const) : (['events'] as const);
  for (const map of maps) {
    const o = mapOf(old[map]);
    const n = mapOf(content[map]);
    for (const k of new Set([...Object.keys(o), ...Object.keys(n)])) {
      const before = level(o[k]);
      const after = level(n[k]);
      if (before === after) continue;
      if (before !== undefined && before > senderLevel) {
        return deny(`cannot change "${map}.${k}" from ${before}: above sender's level ${senderLevel}`);
      }
      if (after !== undefined && after > senderLevel) {
        return deny(`cannot set "${map}.${k}" to ${after}: above sender's level ${senderLevel}`);
      }
    }
  }

  // users: may not touch anyone at or above yourself (except yourself), nor
  // raise anyone above yourself.
  const o = mapOf(old.users);
  const n = mapOf(content.users);
  for (const u of new Set([...Object.keys(o), ...Object.keys(n)])) {
    const before = level(o[u]);
    const after = level(n[u]);
    if (before === after) continue;
    if (before !== undefined && u !== event.sender && before >= senderLevel) {
      return deny(`cannot change the level of ${u} (${before}): not below sender's level ${senderLevel}`);
    }
    if (after !== undefined && after > senderLevel) {
      return deny(`cannot set the level of ${u} to ${after}: above sender's level ${senderLevel}`);
    }
  }
  return ALLOW;
}
