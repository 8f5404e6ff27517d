/** To-device inbox: messages per (user, device) until acknowledged. */
import type { Db, Queryable } from '../db.js';

export interface InboxMessage {
  userId: string;
  deviceId: string;
  message: { type: string; sender: string; content: Record<string, any> };
}

export class ToDeviceStore {
  constructor(private readonly db: Db) {}

  /** Claims a transaction id of the device for one event type (its endpoint path); false when it was already used. */
  async claimTxn(q: Queryable, userId: string, deviceId: string, eventType: string, txnId: string, streamId: number): Promise<boolean> {
    const n = await q.execute(
      `INSERT INTO to_device_txns (user_id, device_id, event_type, txn_id, stream_id, inserted_ts) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id, device_id, event_type, txn_id) DO NOTHING`,
      [userId, deviceId, eventType, txnId, streamId, Date.now()],
    );
    return n > 0;
  }

  async insert(q: Queryable, streamId: number, messages: InboxMessage[]): Promise<void> {
    for (const m of messages) {
      await q.execute(
        `INSERT INTO device_inbox (user_id, device_id, stream_id, message_json) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, device_id, stream_id) DO NOTHING`,
        [m.userId, m.deviceId, streamId, JSON.stringify(m.message)],
      );
    }
  }

  async fetch(userId: string, deviceId: string, from: number, to: number, limit: number): Promise<Array<{ streamId: number; message: any }>> {
    const rows = await this.db.query<{ stream_id: number | string; message_json: string }>(
      `SELECT stream_id, message_json FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ?
        ORDER BY stream_id LIMIT ?`,
      [userId, deviceId, from, to, limit],
    );
    return rows.map((r) => ({ streamId: Number(r.stream_id), message: JSON.parse(r.message_json) }));
  }

  async deleteUpTo(q: Queryable, userId: string, deviceId: string, position: number): Promise<number> {
    return q.execute('DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?', [userId, deviceId, position]);
  }
}
