/**
 * Small helpers shared by the authorisation rules.
 *
 * Identifier parsing here is deliberately minimal (identifiers.ts owns the
 * full grammar): the auth rules only need "the server part of an id" and "does
 * this look like a user id".
 */
import type { RoomVersion } from '../room-versions.js';
import { stateKey, type RoomEvent, type StateMap } from '../types.js';

export type AuthResult = { allowed: true } | { allowed: false; reason: string };

export const ALLOW: AuthResult = Object.freeze({ allowed: true }) as AuthResult;
export function deny(reason: string): AuthResult {
  return { allowed: false, reason };
}

/** The server name of a user, room, alias or (v1/v2) event id: everything after the first ':'. */
export function serverOf(id: string | undefined): string | undefined {
  if (typeof id !== 'string') return undefined;
  const i = id.indexOf(':');
  return i < 0 ? undefined : id.slice(i + 1);
}

/** `@localpart:server` with a non-empty server part (historical localparts allowed). */
export function looksLikeUserId(id: string): boolean {
  if (!id.startsWith('@')) return false;
  const server = serverOf(id);
  return server !== undefined && server.length > 0;
}

export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function memberKey(userId: string): string {
  return stateKey('m.room.member', userId);
}

/** A user's membership in the state; absent = "leave" for the purposes of the rules. */
export function membershipOf(state: StateMap, userId: string): string {
  const m = state.get(memberKey(userId))?.content?.membership;
  return typeof m === 'string' ? m : 'leave';
}

/**
 * The room's join rule. Without an m.room.join_rules event the room behaves as
 * `invite` (the spec's default for rooms without the event).
 */
export function joinRuleOf(state: StateMap): string {
  const jr = state.get(stateKey('m.room.join_rules', ''))?.content?.join_rule;
  return typeof jr === 'string' ? jr : 'invite';
}

/**
 * Rooms v1 and v2 authorise m.room.redaction by comparing the domains of the
 * event ids (they contain a server name only in those versions). From v3 the
 * redaction is checked when it is applied/served, not by the auth rules.
 */
export function usesDomainRedactionRule(rv: RoomVersion): boolean {
  return rv.eventIdFormat === 'v1';
}

/** The event id a redaction points at (top-level before v11, content.redacts in v11). */
export function redactsOf(ev: RoomEvent, rv: RoomVersion): string | undefined {
  const inContent = ev.content?.redacts;
  if (rv.redactsInContent && typeof inContent === 'string') return inContent;
  return typeof ev.redacts === 'string' ? ev.redacts : typeof inContent === 'string' ? inContent : undefined;
}
