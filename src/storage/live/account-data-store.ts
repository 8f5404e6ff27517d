/** Account data (global: room_id '', and per room) and room tags. */
import type { Db, Queryable } from '../db.js';

export interface AccountDataRow {
  roomId: string;
  type: string;
  content: Record<string, any>;
  streamId: number;
}

export class AccountDataStore {
  constructor(private readonly db: Db) {}

  async get(userId: string, roomId: string, type: string): Promise<Record<string, any> | undefined> {
    const r = await this.db.queryOne<{ content: string }>(
      'SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND type = ?',
      [userId, roomId, type],
    );
    return r ? JSON.parse(r.content) : undefined;
  }

  async put(q: Queryable, userId: string, roomId: string, type: string, content: Record<string, any>, streamId: number): Promise<void> {
    await q.execute(
      `INSERT INTO account_data (user_id, room_id, type, content, stream_id) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id`,
      [userId, roomId, type, JSON.stringify(content), streamId],
    );
  }

  /** Rows changed in (from, to]. */
  async changed(userId: string, from: number, to: number): Promise<AccountDataRow[]> {
    const rows = await this.db.query<any>(
      'SELECT room_id, type, content, stream_id FROM account_data WHERE user_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id',
      [userId, from, to],
    );
    return rows.map((r) => ({ roomId: r.room_id, type: r.type, content: JSON.parse(r.content), streamId: Number(r.stream_id) }));
  }

  async getTags(userId: string, roomId: string): Promise<Record<string, Record<string, any>>> {
    const rows = await this.db.query<{ tag: string; content: string }>(
      'SELECT tag, content FROM room_tags WHERE user_id = ? AND room_id = ?',
      [userId, roomId],
    );
    const tags: Record<string, Record<string, any>> = {};
    for (const r of rows) tags[r.tag] = JSON.parse(r.content);
    return tags;
  }

  async getTagsForRooms(userId: string, roomIds: string[]): Promise<Map<string, Record<string, Record<string, any>>>> {
    const out = new Map<string, Record<string, Record<string, any>>>();
    if (!roomIds.length) return out;
    const want = new Set(roomIds);
    const rows = await this.db.query<{ room_id: string; tag: string; content: string }>(
      'SELECT room_id, tag, content FROM room_tags WHERE user_id = ?',
      [userId],
    );
    for (const id of roomIds) out.set(id, {});
    for (const r of rows) if (want.has(r.room_id)) out.get(r.room_id)![r.tag] = JSON.parse(r.content);
    return out;
  }

  async putTag(q: Queryable, userId: string, roomId: string, tag: string, content: Record<string, any>): Promise<void> {
    await q.execute(
      `INSERT INTO room_tags (user_id, room_id, tag, content) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, room_id, tag) DO UPDATE SET content = excluded.content`,
      [userId, roomId, tag, JSON.stringify(content)],
    );
  }

  async deleteTag(q: Queryable, userId: string, roomId: string, tag: string): Promise<void> {
    await q.execute('DELETE FROM room_tags WHERE user_id = ? AND room_id = ? AND tag = ?', [userId, roomId, tag]);
  }
}
