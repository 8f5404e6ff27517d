/**
 * Server-side key backup storage: versions (with an etag counter bumped on
 * every change of their keys) and the backed-up sessions.
 */
import type { Db, Queryable } from '../db.js';

export interface BackupVersion {
  version: number;
  algorithm: string;
  authData: Record<string, any>;
  deleted: boolean;
  etag: number;
}

export interface BackedUpSession {
  roomId: string;
  sessionId: string;
  firstMessageIndex: number;
  forwardedCount: number;
  isVerified: boolean;
  sessionData: Record<string, any>;
}

export interface BackupStore {
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  createVersion(userId: string, algorithm: string, authData: Record<string, any>): Promise<number>;
  /** The latest version that is not deleted. */
  getCurrentVersion(userId: string, tx?: Queryable): Promise<BackupVersion | undefined>;
  getVersion(userId: string, version: number, tx?: Queryable): Promise<BackupVersion | undefined>;
  updateAuthData(userId: string, version: number, authData: Record<string, any>): Promise<void>;
  /** Marks deleted and removes its keys. */
  deleteVersion(userId: string, version: number): Promise<void>;
  bumpEtag(tx: Queryable, userId: string, version: number): Promise<void>;
  countKeys(userId: string, version: number, tx?: Queryable): Promise<number>;
  getSession(tx: Queryable, userId: string, version: number, roomId: string, sessionId: string): Promise<BackedUpSession | undefined>;
  putSession(tx: Queryable, userId: string, version: number, s: BackedUpSession): Promise<void>;
  getSessions(userId: string, version: number, roomId?: string, sessionId?: string): Promise<BackedUpSession[]>;
  /** Returns the number of sessions removed. */
  deleteSessions(tx: Queryable, userId: string, version: number, roomId?: string, sessionId?: string): Promise<number>;
}

interface VersionRow {
  version: number | string;
  algorithm: string;
  auth_data: string;
  deleted: number;
  etag: number | string;
}

const toVersion = (r: VersionRow): BackupVersion => ({
  version: Number(r.version),
  algorithm: r.algorithm,
  authData: JSON.parse(r.auth_data),
  deleted: Number(r.deleted) === 1,
  etag: Number(r.etag),
});

function sessionFilter(roomId?: string, sessionId?: string): { sql: string; params: string[] } {
  let sql = '';
  const params: string[] = [];
  if (roomId !== undefined) {
    sql += ' AND room_id = ?';
    params.push(roomId);
    if (sessionId !== undefined) {
      sql += ' AND session_id = ?';
      params.push(sessionId);
    }
  }
  return { sql, params };
}

export class SqlBackupStore implements BackupStore {
  constructor(private readonly db: Db) {}

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  async createVersion(userId: string, algorithm: string, authData: Record<string, any>): Promise<number> {
    return this.db.transaction(async (tx) => {
      const row = await tx.queryOne<{ m: number | string | null }>('SELECT MAX(version) AS m FROM e2e_room_keys_versions WHERE user_id = ?', [userId]);
      const version = Number(row?.m ?? 0) + 1;
      await tx.execute('INSERT INTO e2e_room_keys_versions (user_id, version, algorithm, auth_data, deleted, etag) VALUES (?, ?, ?, ?, 0, 0)', [
        userId,
        version,
        algorithm,
        JSON.stringify(authData),
      ]);
      return version;
    });
  }

  async getCurrentVersion(userId: string, tx: Queryable = this.db): Promise<BackupVersion | undefined> {
    const r = await tx.queryOne<VersionRow>(
      'SELECT version, algorithm, auth_data, deleted, etag FROM e2e_room_keys_versions WHERE user_id = ? AND deleted = 0 ORDER BY version DESC LIMIT 1',
      [userId],
    );
    return r ? toVersion(r) : undefined;
  }

  async getVersion(userId: string, version: number, tx: Queryable = this.db): Promise<BackupVersion | undefined> {
    const r = await tx.queryOne<VersionRow>('SELECT version, algorithm, auth_data, deleted, etag FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?', [
      userId,
      version,
    ]);
    return r ? toVersion(r) : undefined;
  }

  async updateAuthData(userId: string, version: number, authData: Record<string, any>): Promise<void> {
    await this.db.execute('UPDATE e2e_room_keys_versions SET auth_data = ? WHERE user_id = ? AND version = ?', [JSON.stringify(authData), userId, version]);
  }

  async deleteVersion(userId: string, version: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.execute('UPDATE e2e_room_keys_versions SET deleted = 1 WHERE user_id = ? AND version = ?', [userId, version]);
      await tx.execute('DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?', [userId, version]);
    });
  }

  async bumpEtag(tx: Queryable, userId: string, version: number): Promise<void> {
    await tx.execute('UPDATE e2e_room_keys_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?', [userId, version]);
  }

  async countKeys(userId: string, version: number, tx: Queryable = this.db): Promise<number> {
    const r = await tx.queryOne<{ n: number | string }>('SELECT COUNT(*) AS n FROM e2e_room_keys WHERE user_id = ? AND version = ?', [userId, version]);
    return Number(r?.n ?? 0);
  }

  async getSession(tx: Queryable, userId: string, version: number, roomId: string, sessionId: string): Promise<BackedUpSession | undefined> {
    const [s] = await this.selectSessions(tx, userId, version, roomId, sessionId);
    return s;
  }

  async putSession(tx: Queryable, userId: string, version: number, s: BackedUpSession): Promise<void> {
    await tx.execute(
      `INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
         first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,
         is_verified = excluded.is_verified, session_data = excluded.session_data`,
      [userId, version, s.roomId, s.sessionId, s.firstMessageIndex, s.forwardedCount, s.isVerified ? 1 : 0, JSON.stringify(s.sessionData)],
    );
  }

  getSessions(userId: string, version: number, roomId?: string, sessionId?: string): Promise<BackedUpSession[]> {
    return this.selectSessions(this.db, userId, version, roomId, sessionId);
  }

  private async selectSessions(q: Queryable, userId: string, version: number, roomId?: string, sessionId?: string): Promise<BackedUpSession[]> {
    const f = sessionFilter(roomId, sessionId);
    const rows = await q.query<{
      room_id: string;
      session_id: string;
      first_message_index: number | string;
      forwarded_count: number | string;
      is_verified: number;
      session_data: string;
    }>(
      `SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM e2e_room_keys
       WHERE user_id = ? AND version = ?${f.sql} ORDER BY room_id, session_id`,
      [userId, version, ...f.params],
    );
    return rows.map((r) => ({
      roomId: r.room_id,
      sessionId: r.session_id,
      firstMessageIndex: Number(r.first_message_index),
      forwardedCount: Number(r.forwarded_count),
      isVerified: Number(r.is_verified) === 1,
      sessionData: JSON.parse(r.session_data),
    }));
  }

  async deleteSessions(tx: Queryable, userId: string, version: number, roomId?: string, sessionId?: string): Promise<number> {
    const f = sessionFilter(roomId, sessionId);
    return tx.execute(`DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?${f.sql}`, [userId, version, ...f.params]);
  }
}
