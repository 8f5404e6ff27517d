/**
 * Event ids per room-version format (rooms/fragments/v1-event-ids.md, v3
 * and v4-event-ids.md):
 *   v1/v2 `$<opaque>:<server>` — chosen by the sending server, carried in the event;
 *   v3    `$` + unpadded standard base64 of the reference hash;
 *   v4+   `$` + unpadded URL-safe base64 of the reference hash.
 */

import { randomBytes } from 'node:crypto';
import { encodeBase64, encodeBase64Url } from './base64.js';
import { computeReferenceHash } from './hashes.js';
import { resolveRoomVersion } from './redaction.js';
import type { EventIdFormat, RoomVersion } from './room-versions.js';

export class EventIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventIdError';
  }
}

/** Event id text for a reference hash in a hash-based format. */
export function eventIdFromReferenceHash(hash: Uint8Array, format: EventIdFormat): string {
  if (format === 'v3') return '$' + encodeBase64(hash);
  if (format === 'v4') return '$' + encodeBase64Url(hash);
  throw new EventIdError('room versions 1 and 2 do not derive event ids from hashes');
}

/**
 * The event id of a PDU. For v1/v2 rooms it is the `event_id` the event
 * carries (throws EventIdError if absent); for v3+ it is computed from the
 * reference hash (any `event_id` property is ignored).
 */
export function computeEventId(pdu: object, roomVersion: RoomVersion | string): string {
  const rv = resolveRoomVersion(roomVersion);
  if (rv.eventIdFormat === 'v1') {
    const id = (pdu as { event_id?: unknown }).event_id;
    if (typeof id !== 'string') throw new EventIdError(`room version ${rv.id} events must carry an event_id`);
    return id;
  }
  return eventIdFromReferenceHash(computeReferenceHash(pdu, rv), rv.eventIdFormat);
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A random opaque string of `[A-Za-z0-9]`. */
export function randomOpaqueId(length = 18): string {
  let s = '';
  // 62 does not divide 256; reject the biased tail so characters are uniform.
  while (s.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && s.length < length) s += ALNUM[b % 62];
    }
  }
  return s;
}

/** A new `$<random>:<server>` id for room versions 1 and 2. */
export function generateV1EventId(serverName: string): string {
  return `$${randomOpaqueId()}:${serverName}`;
}
