/**
 * Room ids per room version (appendices "Room IDs", rooms/v12):
 *   v1–v11 `!opaque:server`, chosen by the creating server;
 *   v12+   `!` + the event id of the m.room.create event without its `$`
 *          (unpadded URL-safe base64 of its reference hash), no server part.
 * In v12+ the create event has no `room_id` of its own: the room id names it.
 */
import { computeEventId } from './event-ids.js';
import { addContentHash } from './hashes.js';
import { resolveRoomVersion } from './redaction.js';
import type { RoomVersion } from './room-versions.js';

/** The room id a v12+ create event with this event id starts. */
export function roomIdFromCreateEventId(createEventId: string): string {
  return '!' + createEventId.slice(1);
}

/** The event id of the create event a v12+ room id names. */
export function createEventIdFromRoomId(roomId: string): string {
  return '$' + roomId.slice(1);
}

/**
 * The room id a v12+ m.room.create PDU (without `room_id`, signatures or
 * `hashes`) will start: the content hash is added first, as signing does, so
 * the result equals the id of the signed event. Signatures do not enter the
 * reference hash, so the id is known before signing.
 */
export function roomIdForCreateEvent(createPdu: object, roomVersion: RoomVersion | string): string {
  const rv = resolveRoomVersion(roomVersion);
  if (!rv.roomIdFromCreateEvent) throw new Error(`room version ${rv.id} does not derive room ids from the create event`);
  const { room_id: _r, hashes: _h, signatures: _s, unsigned: _u, ...pdu } = createPdu as Record<string, unknown>;
  return roomIdFromCreateEventId(computeEventId(addContentHash(pdu, rv), rv));
}

/** Whether an event's `room_id` is the one its (v12+) create event implies. */
export function roomIdMatchesCreateEvent(roomId: string | undefined, createEventId: string): boolean {
  return typeof roomId === 'string' && roomId === roomIdFromCreateEventId(createEventId);
}
