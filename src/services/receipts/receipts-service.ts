/**
 * Read receipts (m.read, m.read.private, threaded) and read markers
 * (m.fully_read, kept as room account data). Stream: `receipts`.
 */
import type { ReceiptRow, ReceiptsStore } from '../../storage/live/receipts-store.js';
import type { RoomQueries } from '../../storage/live/room-queries.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import type { ClientEvent, ReceiptsSource } from '../../streams/sync-sources.js';
import { Errors } from '../../util/errors.js';
import type { AccountDataService } from '../account-data/account-data-service.js';

export const RECEIPT_TYPES = ['m.read', 'm.read.private'] as const;
export const FULLY_READ = 'm.fully_read';

export interface ReceiptWriter {
  /** Stores the receipt unless it would move the marker backwards; returns the position or undefined. */
  writeReceipt(r: Omit<ReceiptRow, 'streamId'>): Promise<number | undefined>;
}

export class LocalReceiptWriter implements ReceiptWriter {
  constructor(
    private readonly store: ReceiptsStore,
    private readonly gen: StreamIdGenerator,
    private readonly notifier: StreamNotifier,
  ) {}

  async writeReceipt(r: Omit<ReceiptRow, 'streamId'>): Promise<number | undefined> {
    const existing = await this.store.get(r.roomId, r.receiptType, r.userId, r.threadId);
    // A receipt never moves backwards (an older event than the one already read).
    if (existing && existing.eventStreamOrdering >= r.eventStreamOrdering) return undefined;
    const pos = await this.gen.withNext(async (id) => {
      await this.store.upsert({ ...r, streamId: id });
      return id;
    });
    // A private receipt concerns only its owner; a public one the whole room.
    if (r.receiptType === 'm.read.private') this.notifier.notify({ stream: 'receipts', position: pos, users: [r.userId] });
    else this.notifier.notify({ stream: 'receipts', position: pos, rooms: [r.roomId] });
    return pos;
  }
}

export class ReceiptsService implements ReceiptsSource {
  private writer!: ReceiptWriter;

  constructor(
    private readonly store: ReceiptsStore,
    private readonly rooms: RoomQueries,
    private readonly accountData: AccountDataService,
  ) {}

  setWriter(w: ReceiptWriter): void {
    this.writer = w;
  }

  /** The event, checked to be in the room (404 otherwise). */
  private async eventInRoom(roomId: string, eventId: string) {
    const ev = await this.rooms.getEvent(eventId);
    if (!ev || ev.roomId !== roomId) throw Errors.notFound('Event not found in this room');
    return ev;
  }

  private async requireJoined(roomId: string, userId: string): Promise<void> {
    if (!(await this.rooms.isJoined(roomId, userId))) throw Errors.forbidden('You are not joined to this room');
  }

  /** POST /rooms/{roomId}/receipt/{receiptType}/{eventId}. */
  async postReceipt(userId: string, roomId: string, receiptType: string, eventId: string, threadId: unknown): Promise<void> {
    if (receiptType !== FULLY_READ && !(RECEIPT_TYPES as readonly string[]).includes(receiptType)) {
      throw Errors.invalidParam(`Unknown receipt type: ${receiptType}`);
    }
    if (threadId !== undefined) {
      if (typeof threadId !== 'string' || threadId === '') throw Errors.invalidParam("'thread_id' must be a non-empty string");
      if (receiptType === FULLY_READ) throw Errors.invalidParam("'thread_id' does not apply to m.fully_read");
      if (threadId !== 'main' && !threadId.startsWith('$')) throw Errors.invalidParam("'thread_id' must be 'main' or an event ID");
    }
    await this.requireJoined(roomId, userId);
    const ev = await this.eventInRoom(roomId, eventId);
    if (receiptType === FULLY_READ) {
      await this.accountData.put(userId, roomId, FULLY_READ, { event_id: eventId });
      return;
    }
    if (typeof threadId === 'string' && threadId !== 'main') {
      // The event must be the thread root or in that thread.
      const inThread = ev.eventId === threadId || (ev.relType === 'm.thread' && ev.relatesToId === threadId);
      if (!inThread) throw Errors.invalidParam('The event is not part of the given thread');
    }
    await this.writer.writeReceipt({
      roomId,
      receiptType,
      userId,
      threadId: typeof threadId === 'string' ? threadId : '',
      eventId,
      eventStreamOrdering: ev.streamOrdering,
      ts: Date.now(),
    });
  }

  /** POST /rooms/{roomId}/read_markers. */
  async setReadMarkers(userId: string, roomId: string, markers: { fullyRead?: string; read?: string; readPrivate?: string }): Promise<void> {
    await this.requireJoined(roomId, userId);
    // Check every event before writing anything.
    const evs = new Map<string, Awaited<ReturnType<ReceiptsService['eventInRoom']>>>();
    for (const id of [markers.fullyRead, markers.read, markers.readPrivate]) {
      if (id && !evs.has(id)) evs.set(id, await this.eventInRoom(roomId, id));
    }
    if (markers.fullyRead) await this.accountData.put(userId, roomId, FULLY_READ, { event_id: markers.fullyRead });
    const now = Date.now();
    for (const [type, id] of [['m.read', markers.read], ['m.read.private', markers.readPrivate]] as const) {
      if (!id) continue;
      await this.writer.writeReceipt({ roomId, receiptType: type, userId, threadId: '', eventId: id, eventStreamOrdering: evs.get(id)!.streamOrdering, ts: now });
    }
  }

  async getReceiptsForRooms(roomIds: string[], from: number, to: number, userId: string): Promise<Map<string, ClientEvent>> {
    const out = new Map<string, ClientEvent>();
    if (!roomIds.length || to <= from) return out;
    const rows = await this.store.forRooms(roomIds, from, to, userId);
    for (const r of rows) {
      let ev = out.get(r.roomId);
      if (!ev) out.set(r.roomId, (ev = { type: 'm.receipt', room_id: r.roomId, content: {} }));
      const byType = (ev.content[r.eventId] ??= {});
      const byUser = (byType[r.receiptType] ??= {});
      byUser[r.userId] = r.threadId ? { ts: r.ts, thread_id: r.threadId } : { ts: r.ts };
    }
    return out;
  }

  /**
   * The user's read receipts in the rooms (for unread counts). With `at`,
   * the receipts stream's current position (everything at or below it has
   * committed), the rows may come from the per-user cache: an entry read
   * when the stream was at `through` holds every receipt at or below it,
   * and every receipt write moves the stream, so it answers any request at
   * or below `through` — in every process, whoever wrote the receipts. A
   * request beyond it reads again (the receipts stream has no index by
   * position alone to ask what moved).
   */
  async readReceipts(userId: string, roomIds: string[], at?: number): Promise<ReceiptRow[]> {
    if (at === undefined) return this.store.readReceipts(userId, roomIds);
    const hit = this.readCache.get(userId);
    if (hit && hit.through >= at && roomIds.every((r) => hit.rooms.has(r))) {
      this.readCache.delete(userId); // least recently used first
      this.readCache.set(userId, hit);
      if (hit.rooms.size === roomIds.length) return hit.rows;
      const wanted = new Set(roomIds);
      return hit.rows.filter((r) => wanted.has(r.roomId));
    }
    const rows = await this.store.readReceipts(userId, roomIds);
    const now = this.readCache.get(userId);
    if (!now || now.through <= at) {
      this.readCache.delete(userId);
      if (this.readCache.size >= READ_CACHE_USERS) this.readCache.delete(this.readCache.keys().next().value!);
      this.readCache.set(userId, { through: at, rooms: new Set(roomIds), rows });
    }
    return rows;
  }

  /** Per user: read receipts (rows of `rooms`) holding every receipt up to the receipts position `through`. */
  private readonly readCache = new Map<string, { through: number; rooms: Set<string>; rows: ReceiptRow[] }>();
}

const READ_CACHE_USERS = 20_000;
