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
import { encodeBase64 } from './base64.js';
import { eventIdFromReferenceHash } from './event-ids.js';
import { contentHashInput, referenceHashInput, sha256, withoutDerivedEventId } from './hashes.js';
import { redactEvent, resolveRoomVersion } from './redaction.js';
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
 * must then be present (throws otherwise).
 */
export function signAndHashEvent<T extends object>(
  pdu: T,
  roomVersion: RoomVersion | string,
  serverName: string,
  key: SigningKey,
): { pdu: Signed<T>; eventId: string } {
  const rv = resolveRoomVersion(roomVersion);
  const { pdu: signed, bytes } = hashAndSign(pdu, rv, serverName, key);
  let eventId: string;
  if (rv.eventIdFormat === 'v1') {
    const id = (pdu as Obj).event_id;
    if (typeof id !== 'string') throw new Error(`room version ${rv.id} events must carry an event_id`);
    eventId = id;
  } else {
    eventId = eventIdFromReferenceHash(sha256(bytes), rv.eventIdFormat);
  }
  return { pdu: signed, eventId };
}

function hashAndSign<T extends object>(
  pdu: T,
  rv: RoomVersion,
  serverName: string,
  key: SigningKey,
): { pdu: Signed<T>; bytes: Buffer } {
  const base = withoutDerivedEventId(pdu, rv);
  const hashed = { ...base, hashes: { sha256: encodeBase64(sha256(contentHashInput(base))) } };
  // Redacted, minus signatures/unsigned: both the signed bytes and the
  // reference hash input.
  const bytes = referenceHashInput(hashed, rv);
  const sig = signBytes(bytes, key);
  const signed = { ...hashed, signatures: addSignature((hashed as Obj).signatures, serverName, key.keyId, sig) };
  return { pdu: signed as Signed<T>, bytes };
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
