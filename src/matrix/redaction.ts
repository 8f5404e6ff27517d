/**
 * The redaction algorithm (client-server API "Redactions", and the room
 * version pages: rooms/fragments/v1-, v6-, v9-, v11-redactions.md, rooms/v8.md).
 *
 * Which rule set applies is the room version's `redaction` field:
 *
 * | rules | top-level keys kept                         | content kept                                   |
 * |-------|---------------------------------------------|------------------------------------------------|
 * | v1    | + `origin`, `membership`, `prev_state`      | create.creator, join_rules.join_rule, member.membership, power_levels (8 keys), aliases.aliases, history_visibility |
 * | v6    | same                                        | as v1 without m.room.aliases                   |
 * | v8    | same                                        | + join_rules.allow                             |
 * | v9    | same                                        | + member.join_authorised_via_users_server      |
 * | v11   | without `origin`, `membership`, `prev_state`| create: all; power_levels + invite; redaction.redacts; member third_party_invite.signed |
 *
 * Results share unchanged sub-values with the input (no deep copy): treat
 * events as immutable.
 */

import { getRoomVersion, type RedactionRules, type RoomVersion } from './room-versions.js';

type Obj = Record<string, any>;

const TOP_LEVEL_COMMON = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'auth_events',
  'origin_server_ts',
] as const;
const TOP_LEVEL_PRE_V11 = [...TOP_LEVEL_COMMON, 'prev_state', 'origin', 'membership'] as const;

const POWER_LEVEL_KEYS = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

type ContentRules = Record<string, readonly string[] | 'all'>;

const CONTENT_V1: ContentRules = {
  'm.room.member': ['membership'],
  'm.room.create': ['creator'],
  'm.room.join_rules': ['join_rule'],
  'm.room.power_levels': POWER_LEVEL_KEYS,
  'm.room.aliases': ['aliases'],
  'm.room.history_visibility': ['history_visibility'],
};
const { 'm.room.aliases': _aliases, ...CONTENT_V6 } = CONTENT_V1;
const CONTENT_V8: ContentRules = { ...CONTENT_V6, 'm.room.join_rules': ['join_rule', 'allow'] };
const CONTENT_V9: ContentRules = { ...CONTENT_V8, 'm.room.member': ['membership', 'join_authorised_via_users_server'] };
const CONTENT_V11: ContentRules = {
  ...CONTENT_V9,
  // third_party_invite.signed is handled specially below.
  'm.room.create': 'all',
  'm.room.power_levels': [...POWER_LEVEL_KEYS, 'invite'],
  'm.room.redaction': ['redacts'],
};

interface RuleSet {
  topLevel: readonly string[];
  /** `topLevel` as a set. */
  keeps: ReadonlySet<string>;
  content: ContentRules;
  keepThirdPartyInviteSigned: boolean;
}

const KEEPS_PRE_V11: ReadonlySet<string> = new Set(TOP_LEVEL_PRE_V11);
const KEEPS_COMMON: ReadonlySet<string> = new Set(TOP_LEVEL_COMMON);

const RULES: Record<RedactionRules, RuleSet> = {
  v1: { topLevel: TOP_LEVEL_PRE_V11, keeps: KEEPS_PRE_V11, content: CONTENT_V1, keepThirdPartyInviteSigned: false },
  v6: { topLevel: TOP_LEVEL_PRE_V11, keeps: KEEPS_PRE_V11, content: CONTENT_V6, keepThirdPartyInviteSigned: false },
  v8: { topLevel: TOP_LEVEL_PRE_V11, keeps: KEEPS_PRE_V11, content: CONTENT_V8, keepThirdPartyInviteSigned: false },
  v9: { topLevel: TOP_LEVEL_PRE_V11, keeps: KEEPS_PRE_V11, content: CONTENT_V9, keepThirdPartyInviteSigned: false },
  v11: { topLevel: TOP_LEVEL_COMMON, keeps: KEEPS_COMMON, content: CONTENT_V11, keepThirdPartyInviteSigned: true },
};

/** Accepts a RoomVersion or its id; throws for unknown versions. */
export function resolveRoomVersion(roomVersion: RoomVersion | string): RoomVersion {
  if (typeof roomVersion !== 'string') return roomVersion;
  const v = getRoomVersion(roomVersion);
  if (!v) throw new Error(`unknown room version ${JSON.stringify(roomVersion)}`);
  return v;
}

function redactContent(type: unknown, content: unknown, rules: RuleSet): Obj {
  if (typeof type !== 'string' || typeof content !== 'object' || content === null || Array.isArray(content)) return {};
  const allowed = Object.prototype.hasOwnProperty.call(rules.content, type) ? rules.content[type] : undefined;
  const src = content as Obj;
  if (allowed === 'all') return src;
  const out: Obj = {};
  if (allowed) {
    for (const k of allowed) if (Object.prototype.hasOwnProperty.call(src, k)) out[k] = src[k];
  }
  if (rules.keepThirdPartyInviteSigned && type === 'm.room.member') {
    const tpi = src.third_party_invite;
    if (typeof tpi === 'object' && tpi !== null && !Array.isArray(tpi) && Object.prototype.hasOwnProperty.call(tpi, 'signed')) {
      out.third_party_invite = { signed: tpi.signed };
    }
  }
  return out;
}

/**
 * Redacts an event under the rules of `roomVersion`: strips top-level keys
 * not on the version's list (`unsigned` included) and content keys not kept
 * for the event's type. Returns a new object; the input is not modified.
 */
export function redactEvent<T extends object>(event: T, roomVersion: RoomVersion | string): T {
  const rules = RULES[resolveRoomVersion(roomVersion).redaction];
  const src = event as Obj;
  const out: Obj = {};
  for (const k of rules.topLevel) {
    if (k === 'content') continue;
    if (Object.prototype.hasOwnProperty.call(src, k)) out[k] = src[k];
  }
  out.content = redactContent(src.type, src.content, rules);
  return out as T;
}

/**
 * The two halves of `redactEvent`, for a caller that assembles the redacted
 * form from texts it already has (event signing): whether the room version's
 * rules keep top-level key `key` (`content` is always kept, redacted), and
 * the redacted content of `event` (the very content object when the rules
 * keep all of it).
 */
export function redactionKeepsKey(roomVersion: RoomVersion | string, key: string): boolean {
  return RULES[resolveRoomVersion(roomVersion).redaction].keeps.has(key);
}

export function redactedContent(event: object, roomVersion: RoomVersion | string): Record<string, any> {
  const src = event as Obj;
  return redactContent(src.type, src.content, RULES[resolveRoomVersion(roomVersion).redaction]);
}

/**
 * The redacted form of an event for serving to clients: as `redactEvent`,
 * plus `unsigned.redacted_because` holding the redaction event. `unsigned`
 * keys of the original that describe the event itself (`age`,
 * `transaction_id`, ...) are dropped with the rest.
 */
export function redactForClient<T extends object>(
  event: T,
  redactionEvent: object,
  roomVersion: RoomVersion | string,
): T & { unsigned: { redacted_because: object } } {
  const redacted = redactEvent(event, roomVersion) as Obj;
  redacted.unsigned = { redacted_because: redactionEvent };
  return redacted as T & { unsigned: { redacted_because: object } };
}

/**
 * The event id an `m.room.redaction` event redacts: `content.redacts` in room
 * versions with `redactsInContent` (v11+), else the top-level `redacts`. No
 * fallback to the other place: that copy is a serving-time convenience and in
 * v11 only `content.redacts` survives redaction (is covered by signatures).
 */
export function redactsOf(event: { redacts?: unknown; content?: unknown }, roomVersion: RoomVersion | string): string | undefined {
  const v = resolveRoomVersion(roomVersion).redactsInContent
    ? (event.content as Obj | undefined)?.redacts
    : event.redacts;
  return typeof v === 'string' ? v : undefined;
}
