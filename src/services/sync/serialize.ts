/**
 * Room events in the client format ("ClientEvent"), for /sync and the legacy
 * endpoints: the redacted form when redacted (with unsigned.redacted_because),
 * unsigned.age, transaction_id for the sender's own device, and the
 * prev_content / replaces_state / prev_sender recorded at persist time.
 * Loads what it needs for a whole batch at once.
 */
import { redactForClient } from '../../matrix/redaction.js';
import type { StoredEvent } from '../../storage/rooms/store.js';
import type { ClientEventSerializer, KnownTxnIds } from '../rooms/client-events.js';
import type { SyncStore } from '../../storage/sync/sync-store.js';

export type ClientRoomEvent = Record<string, any> & { type: string; event_id: string; sender: string; content: Record<string, any> };

export interface SerializeOptions {
  userId: string;
  deviceId: string | null;
  /** Keep room_id on each event (legacy endpoints) or drop it (/sync). */
  withRoomId: boolean;
  /** event_format 'federation': the stored PDU as it is. */
  federationFormat?: boolean;
  /** The rooms capability's serializer: used when wired, so /sync and /messages serve events alike. */
  shared?: ClientEventSerializer;
  /**
   * The cheap check before the serializer's decorators (bundled
   * aggregations of relations, rooms-extra): when no event relates to any
   * of the batch, they are skipped.
   */
  mayHaveRelations?: (eventIds: string[]) => Promise<boolean>;
  /** Transaction ids already read for these event ids (the shared serializer reads only the others). */
  knownTxnIds?: KnownTxnIds;
}

/** Top-level keys a client sees (the rest of a PDU is federation detail). */
const CLIENT_KEYS = ['type', 'content', 'event_id', 'sender', 'origin_server_ts', 'state_key', 'room_id', 'redacts'];

export async function serializeEvents(store: SyncStore, events: StoredEvent[], o: SerializeOptions): Promise<ClientRoomEvent[]> {
  if (!events.length) return [];
  if (o.federationFormat) return events.map((e) => e.event as unknown as ClientRoomEvent);
  if (o.shared) {
    const viewer = { userId: o.userId, deviceId: o.deviceId };
    // Aggregations are only bundled on events that are neither redacted nor state.
    const bundled = events.filter((e) => !e.redactedBy && typeof e.event.state_key !== 'string').map((e) => e.event.event_id);
    // The check runs alongside the serialisation's own reads.
    const [plain, decorate] = await Promise.all([
      o.shared.serializePlain(events, viewer, { withoutRoomId: !o.withRoomId, knownTxnIds: o.knownTxnIds }),
      !o.mayHaveRelations || (bundled.length > 0 && o.mayHaveRelations(bundled)),
    ]);
    if (decorate) await o.shared.decorate(events, plain, viewer);
    return plain as unknown as ClientRoomEvent[];
  }
  const now = Date.now();
  const redactionIds = events.filter((e) => e.redactedBy).map((e) => e.redactedBy!);
  const [redactions, versions, txns] = await Promise.all([
    redactionIds.length ? store.getEvents(redactionIds) : Promise.resolve(new Map<string, StoredEvent>()),
    redactionIds.length ? store.roomVersions(events.filter((e) => e.redactedBy).map((e) => e.roomId)) : Promise.resolve(new Map<string, string>()),
    o.deviceId ? store.txnIds(events.filter((e) => e.event.sender === o.userId).map((e) => e.event.event_id), o.userId, o.deviceId) : Promise.resolve(new Map<string, string>()),
  ]);
  const redactionClient = new Map<string, ClientRoomEvent>();
  for (const r of redactions.values()) redactionClient.set(r.event.event_id, toClient(r, o, now, undefined));
  return events.map((e) => {
    let out = toClient(e, o, now, txns.get(e.event.event_id));
    const redaction = e.redactedBy ? redactionClient.get(e.redactedBy) : undefined;
    if (redaction) {
      const age = out.unsigned?.age;
      out = redactForClient(out, redaction, versions.get(e.roomId) ?? '10') as ClientRoomEvent;
      if (!o.withRoomId) delete out.room_id;
      if (age !== undefined) out.unsigned.age = age;
    }
    return out;
  });
}

function toClient(e: StoredEvent, o: SerializeOptions, now: number, txnId: string | undefined): ClientRoomEvent {
  const src = e.event as Record<string, any>;
  const out: Record<string, any> = {};
  for (const k of CLIENT_KEYS) if (src[k] !== undefined) out[k] = src[k];
  if (out.room_id === undefined) out.room_id = e.roomId; // v12+ create events carry none
  // v11 moved `redacts` into content; clients still read the top-level copy.
  if (src.type === 'm.room.redaction' && out.redacts === undefined && typeof src.content?.redacts === 'string') out.redacts = src.content.redacts;
  if (!o.withRoomId) delete out.room_id;
  const unsigned: Record<string, any> = { ...(e.unsignedExtra ?? {}) };
  unsigned.age = Math.max(0, now - Number(src.origin_server_ts ?? now));
  if (txnId !== undefined) unsigned.transaction_id = txnId;
  if (e.redactedBy === null && src.unsigned?.invite_room_state) unsigned.invite_room_state = src.unsigned.invite_room_state;
  out.unsigned = unsigned;
  return out as ClientRoomEvent;
}

/** Stripped state event (invite/knock state). */
export function strippedState(e: StoredEvent): Record<string, any> {
  const src = e.event as Record<string, any>;
  return { type: src.type, state_key: src.state_key, content: src.content, sender: src.sender };
}
