/**
 * Identifier grammar (appendices: Identifier Grammar): server names, user
 * IDs, room IDs, room aliases, event IDs, plus the common namespaced and
 * opaque identifier grammars. Pure functions, no I/O.
 *
 * Lengths are limits in UTF-8 bytes, as the spec words them ("MUST NOT exceed
 * 255 bytes").
 */

import { isIPv6 } from 'node:net';

export const MAX_ID_BYTES = 255;

export type HostKind = 'ipv4' | 'ipv6' | 'dns';

export interface ParsedServerName {
  /** Host as written; IPv6 literals keep their brackets (`[::1]`). */
  host: string;
  port?: number;
  kind: HostKind;
}

export interface ParsedId {
  sigil: '@' | '!' | '#' | '$';
  localpart: string;
  domain: string;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const DNS_RE = /^[A-Za-z0-9.-]{1,255}$/;
const IPV6_CHARS_RE = /^[0-9A-Fa-f:.]{2,45}$/;
const PORT_RE = /^\d{1,5}$/;
const USER_LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;
// Historical localparts / room, alias localparts: any non-surrogate code
// point except ':' and NUL. In JS strings astral code points are surrogate
// pairs, so only *lone* surrogates (not encodable as UTF-8) are rejected.
// eslint-disable-next-line no-control-regex -- NUL is exactly what must be found
const NUL_OR_COLON_RE = /[:\u0000]/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NAMESPACED_RE = /^[a-z][a-z0-9._-]{0,254}$/;
const OPAQUE_RE = /^[0-9A-Za-z\-._~]+$/;
// sha256 digests (32 bytes) encode to 43 unpadded base64 characters.
const V3_EVENT_ID_RE = /^\$[A-Za-z0-9+/]{43}$/;
const V4_EVENT_ID_RE = /^\$[A-Za-z0-9\-_]{43}$/;
// Room version 12+: `!` + the create event's (v4-format) event id, no domain.
const HASH_ROOM_ID_RE = /^![A-Za-z0-9\-_]{43}$/;

function utf8Length(s: string): number {
  // Fast path for ASCII, the overwhelmingly common case.
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? s.length : Buffer.byteLength(s, 'utf8');
}

/** Parses `hostname [":" port]`; undefined if it does not follow the grammar. */
export function parseServerName(name: string): ParsedServerName | undefined {
  if (typeof name !== 'string' || name.length === 0) return undefined;
  let host: string;
  let portText: string | undefined;
  let kind: HostKind;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) return undefined;
    host = name.slice(0, close + 1);
    const rest = name.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
    const inner = host.slice(1, -1);
    // Grammar: 2*45 of [0-9A-Fa-f:.]; semantics: RFC 3513 section 2.2.
    if (!IPV6_CHARS_RE.test(inner) || !isIPv6(inner)) return undefined;
    kind = 'ipv6';
  } else {
    const colon = name.lastIndexOf(':');
    if (colon >= 0) {
      host = name.slice(0, colon);
      portText = name.slice(colon + 1);
    } else {
      host = name;
    }
    const m = IPV4_RE.exec(host);
    if (m) {
      // Looks like a dotted quad: then it is an IPv4 literal and each part
      // must be 0..255.
      for (let i = 1; i <= 4; i++) if (Number(m[i]) > 255) return undefined;
      kind = 'ipv4';
    } else {
      if (!DNS_RE.test(host)) return undefined;
      kind = 'dns';
    }
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!PORT_RE.test(portText)) return undefined;
    port = Number(portText);
    if (port > 65535) return undefined;
  }
  return port === undefined ? { host, kind } : { host, port, kind };
}

export function isValidServerName(name: string): boolean {
  return parseServerName(name) !== undefined;
}

/** Splits `&localpart:domain` at the first colon (the domain may hold more). */
function splitId(id: string, sigil: ParsedId['sigil']): ParsedId | undefined {
  if (typeof id !== 'string' || id[0] !== sigil) return undefined;
  const colon = id.indexOf(':');
  if (colon < 0) return undefined;
  const domain = id.slice(colon + 1);
  if (!isValidServerName(domain)) return undefined;
  if (utf8Length(id) > MAX_ID_BYTES) return undefined;
  return { sigil, localpart: id.slice(1, colon), domain };
}

function lenientLocalpartOk(localpart: string): boolean {
  return !NUL_OR_COLON_RE.test(localpart) && !LONE_SURROGATE_RE.test(localpart);
}

// ---- user IDs ----------------------------------------------------------

/** Current grammar for a user ID localpart: non-empty `[a-z0-9._=\-/+]`. */
export function isValidUserLocalpart(localpart: string): boolean {
  return typeof localpart === 'string' && USER_LOCALPART_RE.test(localpart);
}

/**
 * Parses a user ID under the current (v1.8+) grammar. Use
 * `parseHistoricalUserId` for IDs arriving in events over federation.
 */
export function parseUserId(id: string): ParsedId | undefined {
  const p = splitId(id, '@');
  return p && isValidUserLocalpart(p.localpart) ? p : undefined;
}

/** True if `id` is a user ID under the current grammar. */
export function isValidUserId(id: string): boolean {
  return parseUserId(id) !== undefined;
}

/**
 * Historical user IDs: servers MUST accept localparts of any non-surrogate
 * code points except `:` and NUL, including the empty string.
 */
export function parseHistoricalUserId(id: string): ParsedId | undefined {
  const p = splitId(id, '@');
  return p && lenientLocalpartOk(p.localpart) ? p : undefined;
}

export function isValidHistoricalUserId(id: string): boolean {
  return parseHistoricalUserId(id) !== undefined;
}

/**
 * A historical user ID is "non-compliant" if its localpart is empty or has
 * characters outside U+0021..U+007E; such IDs should not be forwarded to
 * clients outside events.
 */
export function isCompliantHistoricalUserId(id: string): boolean {
  const p = parseHistoricalUserId(id);
  return p !== undefined && /^[\x21-\x7e]+$/.test(p.localpart);
}

// ---- room IDs, aliases ---------------------------------------------------

/**
 * `!opaque:domain` (room versions 1–11). The opaque part must be non-empty.
 * Undefined for the domain-less room ids of v12+ (see isHashRoomId).
 */
export function parseRoomId(id: string): ParsedId | undefined {
  const p = splitId(id, '!');
  return p && p.localpart.length > 0 && lenientLocalpartOk(p.localpart) ? p : undefined;
}

/**
 * A domain-less room id (room version 12+, appendices "Room IDs"): the event
 * id of the m.room.create event with `!` instead of `$`, i.e. `!` + 43
 * characters of unpadded URL-safe base64.
 */
export function isHashRoomId(id: string): boolean {
  return typeof id === 'string' && HASH_ROOM_ID_RE.test(id);
}

/** A room id of any room version: `!opaque:domain` or the v12+ `!hash` form. */
export function isValidRoomId(id: string): boolean {
  return isHashRoomId(id) || parseRoomId(id) !== undefined;
}

/** `#alias:domain`; the localpart may be any non-surrogate code points but `:` and NUL. */
export function parseRoomAlias(alias: string): ParsedId | undefined {
  const p = splitId(alias, '#');
  return p && p.localpart.length > 0 && lenientLocalpartOk(p.localpart) ? p : undefined;
}

export function isValidRoomAlias(alias: string): boolean {
  return parseRoomAlias(alias) !== undefined;
}

/** Either a room ID or a room alias (as `/join/{roomIdOrAlias}` accepts). */
export function isValidRoomIdOrAlias(s: string): boolean {
  return isValidRoomId(s) || isValidRoomAlias(s);
}

// ---- event IDs -----------------------------------------------------------

export type EventIdFormatName = 'v1' | 'v3' | 'v4';

/**
 * Validates an event ID. With `format`, only that room-version format is
 * accepted: `v1` `$opaque:domain`, `v3` `$` + 43 chars of standard base64,
 * `v4` `$` + 43 chars of URL-safe base64. Without it, any of them.
 */
export function isValidEventId(id: string, format?: EventIdFormatName): boolean {
  if (typeof id !== 'string' || id[0] !== '$') return false;
  if (utf8Length(id) > MAX_ID_BYTES) return false;
  switch (format) {
    case 'v1':
      return parseV1EventId(id) !== undefined;
    case 'v3':
      return V3_EVENT_ID_RE.test(id);
    case 'v4':
      return V4_EVENT_ID_RE.test(id);
    default:
      return V4_EVENT_ID_RE.test(id) || V3_EVENT_ID_RE.test(id) || parseV1EventId(id) !== undefined;
  }
}

/** `$opaque:domain` of room versions 1 and 2. */
export function parseV1EventId(id: string): ParsedId | undefined {
  const p = splitId(id, '$');
  return p && p.localpart.length > 0 && lenientLocalpartOk(p.localpart) ? p : undefined;
}

// ---- generic -------------------------------------------------------------

/**
 * The server name in a `@user:`, `!room:`, `#alias:` or `$event:` ID, or
 * undefined if it has none (hash-form event IDs) or is malformed.
 * Lenient about localparts (historical user IDs).
 */
export function serverNameOf(id: string): string | undefined {
  if (typeof id !== 'string') return undefined;
  const sigil = id[0];
  if (sigil !== '@' && sigil !== '!' && sigil !== '#' && sigil !== '$') return undefined;
  const p = splitId(id, sigil);
  return p && lenientLocalpartOk(p.localpart) ? p.domain : undefined;
}

/** The localpart of an `&localpart:domain` identifier, or undefined. */
export function localpartOf(id: string): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon > 0 ? id.slice(1, colon) : undefined;
}

/** Common Namespaced Identifier Grammar: `[a-z][a-z0-9._-]*`, 1–255 chars. */
export function isValidNamespacedId(id: string): boolean {
  return typeof id === 'string' && NAMESPACED_RE.test(id);
}

/** Opaque Identifier Grammar: `[0-9A-Za-z-._~]`, 1–255 chars (unless stated otherwise). */
export function isValidOpaqueId(id: string, maxLength = 255): boolean {
  return typeof id === 'string' && id.length <= maxLength && OPAQUE_RE.test(id);
}

/** True if the string holds a lone surrogate (cannot be UTF-8 encoded). */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE_RE.test(s);
}

/**
 * Suggested mapping (appendices: "Mapping from other character sets") from
 * an arbitrary username to a valid user localpart: lower-case A-Z, and encode
 * other bytes outside the allowed set (and `=`) as `=xx`.
 */
export function mapToUserLocalpart(name: string): string {
  let out = '';
  for (const b of Buffer.from(name, 'utf8')) {
    if (b >= 0x41 && b <= 0x5a) out += String.fromCharCode(b + 0x20); // A-Z -> a-z
    else if (b < 0x80 && /[a-z0-9._\-/+]/.test(String.fromCharCode(b))) out += String.fromCharCode(b);
    else out += '=' + b.toString(16).padStart(2, '0');
  }
  return out;
}
