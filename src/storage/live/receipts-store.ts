/** Receipts: the latest receipt per (room, type, user, thread). */
import { placeholders, type Db } from '../db.js';

export interface ReceiptRow {
  roomId: string;
  receiptType: string;
  userId: string;
  /** '' for an unthreaded receipt. */
  threadId: string;
  eventId: string;
  eventStreamOrdering: number;
  ts: number;
  streamId: number;
}

function toRow(r: any): ReceiptRow {
  return {
    roomId: r.room_id,
    receiptType: r.receipt_type,
    userId: r.user_id,
    threadId: r.thread_id,
    eventId: r.event_id,
    eventStreamOrdering: Number(r.event_stream_ordering),
    ts: Number(r.ts),
    streamId: Number(r.stream_id),
  };
}

export class ReceiptsStore {
  constructor(private readonly db: Db) {}

  async get(roomId: string, receiptType: string, userId: string, threadId: string): Promise<ReceiptRow | undefined> {
    const r = await this.db.queryOne(
      'SELECT * FROM receipts WHERE room_id = ? AND receipt_type = ? AND user_id = ? AND thread_id = ?',
      [roomId, receiptType, userId, threadId],
    );
    return r ? toRow(r) : undefined;
  }

  async upsert(row: ReceiptRow): Promise<void> {
    await this.db.execute(
      `INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, event_stream_ordering, ts, stream_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET
         event_id = excluded.event_id, event_stream_ordering = excluded.event_stream_ordering,
         ts = excluded.ts, stream_id = excluded.stream_id`,
      [row.roomId, row.receiptType, row.userId, row.threadId, row.eventId, row.eventStreamOrdering, row.ts, row.streamId],
    );
  }

  /** Receipts in (from, to] for the rooms; private receipts only the viewer's own. */
  async forRooms(roomIds: string[], from: number, to: number, viewer: string): Promise<ReceiptRow[]> {
    const out: ReceiptRow[] = [];
    for (let i = 0; i < roomIds.length; i += 500) {
      const chunk = roomIds.slice(i, i + 500);
      const rows = await this.db.query(
        `SELECT * FROM receipts WHERE room_id IN (${placeholders(chunk.length)}) AND stream_id > ? AND stream_id <= ?
           AND (receipt_type <> 'm.read.private' OR user_id = ?)`,
        [...chunk, from, to, viewer],
      );
      for (const r of rows) out.push(toRow(r));
    }
    return out;
  }

  /** The user's read receipts (public and private) in the rooms. */
  async readReceipts(userId: string, roomIds: string[]): Promise<ReceiptRow[]> {
    const out: ReceiptRow[] = [];
    for (let i = 0; i < roomIds.length; i += 500) {
      const chunk = roomIds.slice(i, i + 500);
      const rows = await this.db.query(
        `SELECT * FROM receipts WHERE user_id = ? AND room_id IN (${placeholders(chunk.length)})
           AND receipt_type IN ('m.read', 'm.read.private')`,
        [userId, ...chunk],
      );
      for (const r of rows) out.push(toRow(r));
    }
    return out;
  }
}
