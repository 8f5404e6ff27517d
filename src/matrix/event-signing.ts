/**
 * Hashing and signing of events (server-server API "Signing Events"):
 *   1. the content hash of the full event goes into `hashes.sha256`;
 *   2. the event is redacted under the room version's rules;
 *   3. the redacted form is signed (without `signatures`/`unsigned`);
 *   4. the signature is copied onto the full event.
 * Because the redacted form without signatures is also the reference-hash
 * input, `signAndHashEvent` computes the v3+ event id from the same bytes.
 */

import type { KeyObject } from 'node:crypto';
import { eventIdFromReferenceHash } from './event-ids.js';
import { canonicalJson, canonicalMembers, joinMembers } from './canonical-json.js';
import { referenceHashInput, sha256, sha256Base64, withoutDerivedEventId } from './hashes.js';
import { redactedContent, redactEvent, redactionKeepsKey, resolveRoomVersion } from './redaction.js';
import type { RoomVersion } from './room-versions.js';
import { addSignature, signBytes, verifyJsonSignature, type SigningKey } from './signing.js';
import { serverNameOf } from './identifiers.js';

type Obj = Record<string, unknown>;
type Signed<T> = T & { hashes: { sha256: string }; signatures: Record<string, Record<string, string>> };

/**
 * Adds the content hash and this server's signature. Returns a new event;
 * in v3+ rooms any `event_id` is dropped (it is not part of the PDU).
 */
export function signEvent<T extends object>(
  pdu: T,
  roomVersion: RoomVersion | string,
  serverName: string,
  key: SigningKey,
): Signed<T> {
  return hashAndSign(pdu, resolveRoomVersion(roomVersion), serverName, key).pdu;
}

/**
 * As signEvent, and also returns the event id: for v3+ computed from the
 * same bytes that were signed; for v1/v2 the event's own `event_id`, which
 * must then be present (throws otherwise). `size` is the length in bytes of
 * the signed PDU as canonical JSON (what the 64 KiB event limit counts),
 * derived from the texts already encoded. `json` is the canonical JSON of
 * the signed PDU with its event id (`{ ...pdu, event_id }`: what the store
 * keeps), assembled from the same texts; undefined when the PDU needed the
 * general encoder (a float, a key to escape, keys the hash leaves out).
 */
export function signAndHashEvent<T extends object>(
  pdu: T,
  roomVersion: RoomVersion | string,
  serverName: string,
  key: SigningKey,
): { pdu: Signed<T>; eventId: string; size: number; json?: string } {
  const rv = resolveRoomVersion(roomVersion);
  const { pdu: signed, bytes, size, members } = hashAndSign(pdu, rv, serverName, key);
  let eventId: string;
  if (rv.eventIdFormat === 'v1') {
    const id = (pdu as Obj).event_id;
    if (typeof id !== 'string') throw new Error(`room version ${rv.id} events must carry an event_id`);
    eventId = id;
  } else {
    eventId = eventIdFromReferenceHash(sha256(bytes), rv.eventIdFormat);
  }
  if (!members) return { pdu: signed, eventId, size };
  // v1/v2: event_id is one of the PDU's own members already.
  const json =
    rv.eventIdFormat === 'v1'
      ? joinMembers(members.keys, members.texts, HASHES_SIGNATURES, [members.hashes, members.signatures])
      : joinMembers(members.keys, members.texts, ID_HASHES_SIGNATURES, [JSON.stringify(eventId), members.hashes, members.signatures]);
  return { pdu: signed, eventId, size, json };
}

/** Top-level keys the content hash leaves out; the signed PDU adds them back. */
const OUTSIDE_CONTENT_HASH = ['hashes', 'signatures', 'unsigned'] as const;
/** The keys a new event's stored form adds to the content-hashed members, in canonical order. */
const HASHES_SIGNATURES = ['hashes', 'signatures'];
const ID_HASHES_SIGNATURES = ['event_id', 'hashes', 'signatures'];

/** A new event's members as canonical JSON texts, and those of the keys signing adds. */
interface SignedMembers {
  keys: string[];
  texts: string[];
  hashes: string;
  signatures: string;
}

function hashAndSign<T extends object>(
  pdu: T,
  rv: RoomVersion,
  serverName: string,
  key: SigningKey,
): { pdu: Signed<T>; bytes: Buffer; size: number; members?: SignedMembers } {
  const base = withoutDerivedEventId(pdu, rv) as Obj;
  // A new event carries none of the keys the content hash leaves out: then it is hashed as it is, without a copy.
  let hashedPart = base;
  if ('unsigned' in base || 'signatures' in base || 'hashes' in base) {
    const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = base;
    hashedPart = rest;
  } else if (base.content !== undefined) {
    // Each member encoded once: the content-hash text, the reference text and the stored form are assembled from them.
    const members = canonicalMembers(base);
    if (members) return hashAndSignMembers(base, members, rv, serverName, key);
  }
  const contentText = canonicalJson(hashedPart);
  const contentHash = sha256Base64(contentText);
  // A fresh object (the caller's PDU is not modified); `signatures` is added to it below.
  const signed: Obj = { ...base, hashes: { sha256: contentHash } };
  // Redacted, minus signatures/unsigned: both the signed bytes and the
  // reference hash input.
  const bytes = referenceHashInput(signed, rv);
  const sig = signBytes(bytes, key);
  signed.signatures = addSignature(signed.signatures, serverName, key.keyId, sig);
  // Canonical size of `signed`: the content-hash text plus `,"key":value` for each key it left out
  // (`hashes` is `{"sha256":"<43 base64 characters>"}`).
  let size = Buffer.byteLength(contentText);
  let entries = contentText.length > 2 ? 1 : 0;
  for (const k of OUTSIDE_CONTENT_HASH) {
    const v = signed[k];
    if (v === undefined) continue;
    // `"k":` (k is plain ASCII) and the value's canonical text.
    const valueSize = k === 'hashes' ? 13 + contentHash.length : Buffer.byteLength(canonicalJson(v));
    size += k.length + 3 + valueSize + (entries++ > 0 ? 1 : 0);
  }
  return { pdu: signed as Signed<T>, bytes, size };
}

/**
 * hashAndSign of a new event (no hashes, signatures or unsigned) whose
 * members encoded on the fast path: the content-hash text is the members
 * joined; the reference text (the signed bytes) is the members the room
 * version's redaction keeps, the redacted content and `hashes`, joined —
 * the same bytes as encoding `redactEvent` of the hashed event again.
 */
function hashAndSignMembers<T extends object>(
  base: Obj,
  m: { keys: string[]; texts: string[] },
  rv: RoomVersion,
  serverName: string,
  key: SigningKey,
): { pdu: Signed<T>; bytes: Buffer; size: number; members: SignedMembers } {
  const contentText = joinMembers(m.keys, m.texts);
  const contentHash = sha256Base64(contentText);
  const hashesText = '{"sha256":"' + contentHash + '"}';
  const refKeys: string[] = [];
  const refTexts: string[] = [];
  for (let i = 0; i < m.keys.length; i++) {
    const k = m.keys[i]!;
    if (!redactionKeepsKey(rv, k)) continue;
    refKeys.push(k);
    if (k !== 'content') {
      refTexts.push(m.texts[i]!);
      continue;
    }
    const content = redactedContent(base, rv);
    refTexts.push(content === base.content ? m.texts[i]! : canonicalJson(content));
  }
  const bytes = Buffer.from(joinMembers(refKeys, refTexts, ['hashes'], [hashesText]), 'utf8');
  const sig = signBytes(bytes, key);
  const signed: Obj = { ...base, hashes: { sha256: contentHash }, signatures: addSignature(undefined, serverName, key.keyId, sig) };
  const signaturesText = canonicalJson(signed.signatures);
  // `,"hashes":…` and `,"signatures":…` added to the content-hash text.
  const size =
    Buffer.byteLength(contentText) + (contentText.length > 2 ? 1 : 0) + 9 + hashesText.length + 1 + 13 + Buffer.byteLength(signaturesText);
  return { pdu: signed as Signed<T>, bytes, size, members: { keys: m.keys, texts: m.texts, hashes: hashesText, signatures: signaturesText } };
}

/**
 * Checks the signature of `serverName` with `keyId` over the redacted event
 * (works on full and redacted copies alike). Does not check the content hash:
 * call checkContentHash after, and keep the redacted copy if that fails.
 */
export function verifyEventSignature(
  pdu: object,
  roomVersion: RoomVersion | string,
  serverName: string,
  keyId: string,
  publicKey: string | KeyObject,
): boolean {
  let redacted: object;
  try {
    const rv = resolveRoomVersion(roomVersion);
    redacted = redactEvent(withoutDerivedEventId(pdu, rv), rv);
  } catch {
    return false;
  }
  return verifyJsonSignature(redacted, serverName, keyId, publicKey);
}

/**
 * Servers whose signatures an event needs: the sender's server; in room
 * versions 1 and 2 also the server of the event id, if different. (Third-party
 * invite membership events are special-cased by the caller: the sender must
 * match the invite and the sending server may differ.)
 */
export function requiredSignatureServers(pdu: object, roomVersion: RoomVersion | string): string[] {
  const rv = resolveRoomVersion(roomVersion);
  const servers: string[] = [];
  const sender = (pdu as Obj).sender;
  const senderServer = typeof sender === 'string' ? serverNameOf(sender) : undefined;
  if (senderServer) servers.push(senderServer);
  if (rv.eventIdFormat === 'v1') {
    const id = (pdu as Obj).event_id;
    const idServer = typeof id === 'string' ? serverNameOf(id) : undefined;
    if (idServer && idServer !== senderServer) servers.push(idServer);
  }
  return servers;
}
