/**
 * Events as clients see them (client-server API "Client event format"): no
 * hashes, signatures, auth/prev events or depth; `unsigned` with `age`,
 * `transaction_id` (for the sending device only), `prev_content` /
 * `replaces_state` for state events, and redacted events served redacted
 * under their room version's rules with `unsigned.redacted_because`.
 *
 * Everything is looked up per batch (redaction events, transaction ids,
 * room versions), never per event.
 */
import { redactEvent } from '../../matrix/redaction.js';
import { getRoomVersion, type RoomVersion } from '../../matrix/room-versions.js';
import type { RoomEvent } from '../../matrix/types.js';
import type { RoomStore, StoredEvent } from '../../storage/rooms/store.js';

export interface ClientEvent {
  content: Record<string, any>;
  event_id: string;
  origin_server_ts: number;
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  redacts?: string;
  unsigned?: Record<string, any>;
}

export interface Viewer {
  userId: string;
  deviceId?: string | null;
}

/** Transaction ids the caller already read for the viewer: `ids` holds those found among `asked`. */
export interface KnownTxnIds {
  asked: ReadonlySet<string>;
  ids: ReadonlyMap<string, string>;
}

export interface SerializeOptions {
  /** Leave `room_id` out (/sync, where the room is the key): built without it rather than deleted after. */
  withoutRoomId?: boolean;
  /** Read by the caller for the same viewer (alongside its own reads): only the other events are asked. */
  knownTxnIds?: KnownTxnIds;
}

/** Event ids per transaction-id read (the stores read at most 500 per statement). */
const TXN_IDS_PER_READ = 500;

export class ClientEventSerializer {
  private readonly versions = new Map<string, RoomVersion>();

  constructor(private readonly store: RoomStore) {}

  /** The version of a room (cached forever: it never changes). */
  async roomVersion(roomId: string): Promise<RoomVersion | undefined> {
    let v = this.versions.get(roomId);
    if (!v) {
      const row = await this.store.getRoom(roomId);
      v = row ? getRoomVersion(row.roomVersion) : undefined;
      if (v) this.versions.set(roomId, v);
    }
    return v;
  }

  /**
   * Added to every served batch after serialisation (rooms-extra: bundled
   * aggregations, unsigned["m.relations"]). Each gets the stored events and
   * their serialised form, in the same order; the form may still be on its
   * way (a promise): a decorator does its reads first, alongside the
   * serialisation's own, and awaits it only to fill it in.
   */
  readonly decorators: Array<
    (events: readonly StoredEvent[], out: ClientEvent[] | Promise<ClientEvent[]>, viewer?: Viewer) => Promise<void>
  > = [];

  /** Serialises a batch of stored events for `viewer`, in the given order (with the decorators). */
  async serialize(events: readonly StoredEvent[], viewer?: Viewer, opts?: SerializeOptions): Promise<ClientEvent[]> {
    const outP = this.serializePlain(events, viewer, opts);
    if (!events.length || !this.decorators.length) return outP;
    const [out] = await Promise.all([outP, this.decorate(events, outP, viewer)]);
    return out;
  }

  /** Runs the decorators on a batch `serializePlain` returned or is returning (what `serialize` adds). */
  async decorate(events: readonly StoredEvent[], out: ClientEvent[] | Promise<ClientEvent[]>, viewer?: Viewer): Promise<void> {
    for (const d of this.decorators) await d(events, out, viewer);
  }

  /** Serialises a batch without the decorators. */
  async serializePlain(events: readonly StoredEvent[], viewer?: Viewer, opts?: SerializeOptions): Promise<ClientEvent[]> {
    if (!events.length) return [];
    const now = Date.now();
    const redactionIds = events.map((e) => e.redactedBy).filter((x): x is string => !!x);
    const known = opts?.knownTxnIds;
    const mine = viewer?.deviceId
      ? events.filter((e) => e.event.sender === viewer.userId && !known?.asked.has(e.event.event_id)).map((e) => e.event.event_id)
      : [];
    // The reads are independent: run together (a large batch's transaction ids in parallel parts).
    const newRooms = new Set<string>();
    for (const e of events) if (!this.versions.has(e.roomId)) newRooms.add(e.roomId);
    const [redactions, txnIds] = await Promise.all([
      redactionIds.length ? this.store.getEvents(redactionIds) : new Map<string, StoredEvent>(),
      mine.length ? this.txnIds(mine, viewer!.userId, viewer!.deviceId!) : new Map<string, string>(),
      newRooms.size ? Promise.all([...newRooms].map((r) => this.roomVersion(r))) : undefined,
    ]);

    const noRoomId = opts?.withoutRoomId === true;
    return events.map((se) => {
      const rv = this.versions.get(se.roomId);
      const redaction = se.redactedBy ? redactions.get(se.redactedBy) : undefined;
      if (redaction && rv) {
        const out = toClient(redactEvent(se.event, rv) as RoomEvent, rv, now, se.roomId, noRoomId);
        out.unsigned = { ...(out.unsigned ?? {}), redacted_because: toClient(redaction.event, rv, now, undefined, noRoomId) };
        return out;
      }
      const out = toClient(se.event, rv, now, se.roomId, noRoomId);
      const txn = txnIds.get(se.event.event_id) ?? known?.ids.get(se.event.event_id);
      if (txn) out.unsigned!.transaction_id = txn;
      if (se.unsignedExtra) {
        if (se.unsignedExtra.replaces_state) out.unsigned!.replaces_state = se.unsignedExtra.replaces_state;
        if (se.unsignedExtra.prev_content) out.unsigned!.prev_content = se.unsignedExtra.prev_content;
        if (se.unsignedExtra.prev_sender) out.unsigned!.prev_sender = se.unsignedExtra.prev_sender;
      }
      return out;
    });
  }

  /** Transaction ids of the viewer's events, in parts of TXN_IDS_PER_READ read concurrently. */
  private async txnIds(eventIds: string[], userId: string, deviceId: string): Promise<Map<string, string>> {
    if (eventIds.length <= TXN_IDS_PER_READ) return this.store.getTxnIds(eventIds, userId, deviceId);
    const parts: string[][] = [];
    for (let i = 0; i < eventIds.length; i += TXN_IDS_PER_READ) parts.push(eventIds.slice(i, i + TXN_IDS_PER_READ));
    const maps = await Promise.all(parts.map((p) => this.store.getTxnIds(p, userId, deviceId)));
    return new Map(maps.flatMap((m) => [...m]));
  }

  async serializeOne(event: StoredEvent, viewer?: Viewer): Promise<ClientEvent> {
    return (await this.serialize([event], viewer))[0]!;
  }
}

/**
 * The client format of one event (no unsigned extras). `roomId` fills in
 * `room_id` for events that carry none (the m.room.create event of room
 * version 12+, whose room id is derived from it); `withoutRoomId` leaves it
 * out (/sync: typed as present for the callers that keep it).
 */
export function toClient(ev: RoomEvent, _rv: RoomVersion | undefined, now = Date.now(), roomId?: string, withoutRoomId = false): ClientEvent {
  const out: ClientEvent = withoutRoomId
    ? ({
        content: (ev.content ?? {}) as Record<string, any>,
        event_id: ev.event_id,
        origin_server_ts: ev.origin_server_ts,
        sender: ev.sender,
        type: ev.type,
        unsigned: { age: Math.max(0, now - ev.origin_server_ts) },
      } as unknown as ClientEvent)
    : {
        content: (ev.content ?? {}) as Record<string, any>,
        event_id: ev.event_id,
        origin_server_ts: ev.origin_server_ts,
        room_id: ev.room_id ?? roomId,
        sender: ev.sender,
        type: ev.type,
        unsigned: { age: Math.max(0, now - ev.origin_server_ts) },
      };
  if (typeof ev.state_key === 'string') out.state_key = ev.state_key;
  if (ev.type === 'm.room.redaction') {
    // Clients read `redacts` at the top level before v11 and in content from
    // v11; serve both so every client finds it.
    const r = typeof ev.redacts === 'string' ? ev.redacts : typeof out.content.redacts === 'string' ? out.content.redacts : undefined;
    if (r) out.redacts = r;
  }
  return out;
}
