/**
 * Storage of device keys, one-time and fallback keys, cross-signing keys and
 * signatures, and the device_lists stream. One SQL implementation for both
 * engines (the Db interface rewrites placeholders).
 */
import { placeholders, type Db, type Queryable } from '../db.js';

export type CrossSigningKeyType = 'master' | 'self_signing' | 'user_signing';

export interface StoredCrossSigningKey {
  keyType: CrossSigningKeyType;
  publicKey: string;
  key: Record<string, any>;
}

export interface StoredSignature {
  /** Signer user id and key id (`ed25519:<pub or device>`). */
  userId: string;
  keyId: string;
  targetUserId: string;
  targetKeyId: string;
  signature: string;
}

export interface OneTimeKeyRow {
  algorithm: string;
  keyId: string;
  key: unknown;
}

export interface ClaimedKey {
  keyId: string;
  key: unknown;
}

export interface KeysStore {
  getDeviceKeys(userId: string, deviceId: string, tx?: Queryable): Promise<Record<string, any> | undefined>;
  /**
   * Device keys of the given users' existing devices, with the device
   * display name (read from the accounts capability's devices table); a
   * non-empty list limits a user to those device ids.
   */
  getDeviceKeysForUsers(query: Map<string, string[]>): Promise<Map<string, Map<string, { key: Record<string, any>; displayName: string | null }>>>;
  setDeviceKeys(tx: Queryable, userId: string, deviceId: string, key: Record<string, any>): Promise<void>;

  /** Existing one-time keys with these ids (to detect conflicting re-uploads). */
  getOneTimeKeys(tx: Queryable, userId: string, deviceId: string, ids: Array<{ algorithm: string; keyId: string }>): Promise<OneTimeKeyRow[]>;
  addOneTimeKeys(tx: Queryable, userId: string, deviceId: string, keys: OneTimeKeyRow[]): Promise<void>;
  countOneTimeKeys(userId: string, deviceId: string, tx?: Queryable): Promise<Record<string, number>>;
  /** Removes and returns the oldest one-time key of each wanted device and algorithm (each key at most once), keyed by `claimKey`. */
  claimOneTimeKeys(wanted: Array<{ userId: string; deviceId: string; algorithm: string }>): Promise<Map<string, ClaimedKey>>;
  /** Removes and returns the oldest one-time key of the algorithm (each key at most once). */
  claimOneTimeKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined>;

  getFallbackKey(tx: Queryable, userId: string, deviceId: string, algorithm: string): Promise<(ClaimedKey & { used: boolean }) | undefined>;
  setFallbackKey(tx: Queryable, userId: string, deviceId: string, algorithm: string, keyId: string, key: unknown): Promise<void>;
  /** Returns the fallback key of the algorithm and marks it used. */
  claimFallbackKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined>;
  unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]>;

  /** Removes every key of a device and the signatures on it. */
  deleteDeviceKeys(tx: Queryable, userId: string, deviceId: string): Promise<void>;

  getCrossSigningKeys(userIds: string[], tx?: Queryable): Promise<Map<string, Map<CrossSigningKeyType, StoredCrossSigningKey>>>;
  setCrossSigningKey(tx: Queryable, userId: string, k: StoredCrossSigningKey): Promise<void>;

  /** Signatures on the given targets (user id -> target key ids). */
  getSignatures(targets: Array<{ userId: string; keyIds: string[] }>): Promise<StoredSignature[]>;
  addSignatures(tx: Queryable, sigs: StoredSignature[]): Promise<void>;

  /** Appends device_lists stream rows at `position`. */
  addDeviceListChanges(tx: Queryable, position: number, userIds: string[]): Promise<void>;
  /** Distinct users with device_lists rows in (from, to]. */
  deviceListChangesInRange(from: number, to: number, userIds?: string[]): Promise<string[]>;
}

const parse = (s: string): any => JSON.parse(s);

/** Map key of a claim result. */
export const claimKey = (userId: string, deviceId: string, algorithm: string): string => `${userId}\u0000${deviceId}\u0000${algorithm}`;

export class SqlKeysStore implements KeysStore {
  constructor(private readonly db: Db) {}

  async getDeviceKeys(userId: string, deviceId: string, tx: Queryable = this.db): Promise<Record<string, any> | undefined> {
    const row = await tx.queryOne<{ key_json: string }>('SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?', [userId, deviceId]);
    return row ? parse(row.key_json) : undefined;
  }

  async getDeviceKeysForUsers(query: Map<string, string[]>): Promise<Map<string, Map<string, { key: Record<string, any>; displayName: string | null }>>> {
    const out = new Map<string, Map<string, { key: Record<string, any>; displayName: string | null }>>();
    const users = [...query.keys()];
    if (!users.length) return out;
    // One query for all users; device filters are applied in memory (the
    // number of devices per user is small).
    for (let i = 0; i < users.length; i += 500) {
      const chunk = users.slice(i, i + 500);
      const rows = await this.db.query<{ user_id: string; device_id: string; key_json: string; display_name: string | null }>(
        `SELECT k.user_id, k.device_id, k.key_json, d.display_name FROM e2e_device_keys k
         JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id
         WHERE k.user_id IN (${placeholders(chunk.length)})`,
        chunk,
      );
      for (const r of rows) {
        const wanted = query.get(r.user_id);
        if (wanted && wanted.length && !wanted.includes(r.device_id)) continue;
        let m = out.get(r.user_id);
        if (!m) out.set(r.user_id, (m = new Map()));
        m.set(r.device_id, { key: parse(r.key_json), displayName: r.display_name ?? null });
      }
    }
    return out;
  }

  async setDeviceKeys(tx: Queryable, userId: string, deviceId: string, key: Record<string, any>): Promise<void> {
    await tx.execute(
      `INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts_added_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json, ts_added_ms = excluded.ts_added_ms`,
      [userId, deviceId, JSON.stringify(key), Date.now()],
    );
  }

  async getOneTimeKeys(tx: Queryable, userId: string, deviceId: string, ids: Array<{ algorithm: string; keyId: string }>): Promise<OneTimeKeyRow[]> {
    const out: OneTimeKeyRow[] = [];
    // Grouped by algorithm so that the IN list is one column.
    const byAlg = new Map<string, string[]>();
    for (const { algorithm, keyId } of ids) byAlg.set(algorithm, [...(byAlg.get(algorithm) ?? []), keyId]);
    for (const [alg, keyIds] of byAlg) {
      for (let i = 0; i < keyIds.length; i += 500) {
        const chunk = keyIds.slice(i, i + 500);
        const rows = await tx.query<{ key_id: string; key_json: string }>(
          `SELECT key_id, key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id IN (${placeholders(chunk.length)})`,
          [userId, deviceId, alg, ...chunk],
        );
        for (const r of rows) out.push({ algorithm: alg, keyId: r.key_id, key: parse(r.key_json) });
      }
    }
    return out;
  }

  async addOneTimeKeys(tx: Queryable, userId: string, deviceId: string, keys: OneTimeKeyRow[]): Promise<void> {
    if (!keys.length) return;
    const row = await tx.queryOne<{ m: number | null }>('SELECT MAX(upload_seq) AS m FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?', [userId, deviceId]);
    // Keys of one upload share a sequence number later than any earlier upload's.
    const seq = Math.max(Number(row?.m ?? 0) + 1, Date.now());
    for (const k of keys) {
      await tx.execute(
        `INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, upload_seq) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING`,
        [userId, deviceId, k.algorithm, k.keyId, JSON.stringify(k.key), seq],
      );
    }
  }

  async countOneTimeKeys(userId: string, deviceId: string, tx: Queryable = this.db): Promise<Record<string, number>> {
    const rows = await tx.query<{ algorithm: string; n: number | string }>(
      'SELECT algorithm, COUNT(*) AS n FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm',
      [userId, deviceId],
    );
    const out: Record<string, number> = {};
    for (const r of rows) out[r.algorithm] = Number(r.n);
    return out;
  }

  async claimOneTimeKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined> {
    // One atomic statement: the oldest key is deleted and returned. On
    // PostgreSQL, FOR UPDATE SKIP LOCKED makes a concurrent claim pass over a
    // key another claim is taking, so no key is ever returned twice; SQLite
    // runs one statement at a time.
    const sql =
      this.db.engine === 'postgres'
        ? `DELETE FROM e2e_one_time_keys WHERE (user_id, device_id, algorithm, key_id) IN (
             SELECT user_id, device_id, algorithm, key_id FROM e2e_one_time_keys
             WHERE user_id = ? AND device_id = ? AND algorithm = ?
             ORDER BY upload_seq, key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING key_id, key_json`
        : `DELETE FROM e2e_one_time_keys WHERE rowid = (
             SELECT rowid FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?
             ORDER BY upload_seq, key_id LIMIT 1)
           RETURNING key_id, key_json`;
    const rows = await this.db.query<{ key_id: string; key_json: string }>(sql, [userId, deviceId, algorithm]);
    const r = rows[0];
    return r ? { keyId: r.key_id, key: parse(r.key_json) } : undefined;
  }

  async claimOneTimeKeys(wanted: Array<{ userId: string; deviceId: string; algorithm: string }>): Promise<Map<string, ClaimedKey>> {
    const out = new Map<string, ClaimedKey>();
    // One statement per chunk deletes and returns the oldest key of every
    // wanted device. PostgreSQL: each device's key is picked with FOR UPDATE
    // SKIP LOCKED, so concurrent claims never wait on each other (no
    // deadlocks) and never take the same key. SQLite runs one statement at a
    // time. Devices left without a key are retried one by one below.
    for (let i = 0; i < wanted.length; i += 300) {
      const chunk = wanted.slice(i, i + 300);
      const values = chunk.map(() => '(?, ?, ?)').join(', ');
      const sql =
        this.db.engine === 'postgres'
          ? `DELETE FROM e2e_one_time_keys d USING (
               SELECT p.user_id, p.device_id, p.algorithm, p.key_id FROM (VALUES ${values}) AS w
               CROSS JOIN LATERAL (
                 SELECT k.user_id, k.device_id, k.algorithm, k.key_id FROM e2e_one_time_keys k
                 WHERE k.user_id = w.column1 AND k.device_id = w.column2 AND k.algorithm = w.column3
                 ORDER BY k.upload_seq, k.key_id LIMIT 1 FOR UPDATE SKIP LOCKED
               ) p
             ) sel
             WHERE d.user_id = sel.user_id AND d.device_id = sel.device_id AND d.algorithm = sel.algorithm AND d.key_id = sel.key_id
             RETURNING d.user_id, d.device_id, d.algorithm, d.key_id, d.key_json`
          : `DELETE FROM e2e_one_time_keys WHERE rowid IN (
               SELECT rid FROM (
                 SELECT k.rowid AS rid,
                        ROW_NUMBER() OVER (PARTITION BY k.user_id, k.device_id, k.algorithm ORDER BY k.upload_seq, k.key_id) AS rn
                 FROM e2e_one_time_keys k
                 JOIN (VALUES ${values}) AS w ON k.user_id = w.column1 AND k.device_id = w.column2 AND k.algorithm = w.column3
               ) ranked WHERE rn = 1)
             RETURNING user_id, device_id, algorithm, key_id, key_json`;
      const rows = await this.db.query<{ user_id: string; device_id: string; algorithm: string; key_id: string; key_json: string }>(
        sql,
        chunk.flatMap((w) => [w.userId, w.deviceId, w.algorithm]),
      );
      for (const r of rows) out.set(claimKey(r.user_id, r.device_id, r.algorithm), { keyId: r.key_id, key: parse(r.key_json) });
    }
    for (const w of wanted) {
      const k = claimKey(w.userId, w.deviceId, w.algorithm);
      if (out.has(k)) continue;
      const c = await this.claimOneTimeKey(w.userId, w.deviceId, w.algorithm);
      if (c) out.set(k, c);
    }
    return out;
  }

  async getFallbackKey(tx: Queryable, userId: string, deviceId: string, algorithm: string): Promise<(ClaimedKey & { used: boolean }) | undefined> {
    const r = await tx.queryOne<{ key_id: string; key_json: string; used: number }>(
      'SELECT key_id, key_json, used FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?',
      [userId, deviceId, algorithm],
    );
    return r ? { keyId: r.key_id, key: parse(r.key_json), used: Number(r.used) === 1 } : undefined;
  }

  async setFallbackKey(tx: Queryable, userId: string, deviceId: string, algorithm: string, keyId: string, key: unknown): Promise<void> {
    await tx.execute(
      `INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES (?, ?, ?, ?, ?, 0)
       ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json, used = 0`,
      [userId, deviceId, algorithm, keyId, JSON.stringify(key)],
    );
  }

  async claimFallbackKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined> {
    const rows = await this.db.query<{ key_id: string; key_json: string }>(
      'UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ? RETURNING key_id, key_json',
      [userId, deviceId, algorithm],
    );
    const r = rows[0];
    return r ? { keyId: r.key_id, key: parse(r.key_json) } : undefined;
  }

  async unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    const rows = await this.db.query<{ algorithm: string }>(
      'SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm',
      [userId, deviceId],
    );
    return rows.map((r) => r.algorithm);
  }

  async deleteDeviceKeys(tx: Queryable, userId: string, deviceId: string): Promise<void> {
    const p = [userId, deviceId];
    await tx.execute('DELETE FROM e2e_device_keys WHERE user_id = ? AND device_id = ?', p);
    await tx.execute('DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?', p);
    await tx.execute('DELETE FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?', p);
    await tx.execute('DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ? AND target_key_id = ?', p);
    // Signatures the device made (e.g. on its user's master key).
    await tx.execute('DELETE FROM e2e_cross_signing_signatures WHERE user_id = ? AND key_id = ?', [userId, `ed25519:${deviceId}`]);
  }

  async getCrossSigningKeys(userIds: string[], tx: Queryable = this.db): Promise<Map<string, Map<CrossSigningKeyType, StoredCrossSigningKey>>> {
    const out = new Map<string, Map<CrossSigningKeyType, StoredCrossSigningKey>>();
    for (let i = 0; i < userIds.length; i += 500) {
      const chunk = userIds.slice(i, i + 500);
      if (!chunk.length) break;
      const rows = await tx.query<{ user_id: string; key_type: CrossSigningKeyType; public_key: string; key_json: string }>(
        `SELECT user_id, key_type, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id IN (${placeholders(chunk.length)})`,
        chunk,
      );
      for (const r of rows) {
        let m = out.get(r.user_id);
        if (!m) out.set(r.user_id, (m = new Map()));
        m.set(r.key_type, { keyType: r.key_type, publicKey: r.public_key, key: parse(r.key_json) });
      }
    }
    return out;
  }

  async setCrossSigningKey(tx: Queryable, userId: string, k: StoredCrossSigningKey): Promise<void> {
    const prev = await tx.queryOne<{ public_key: string }>('SELECT public_key FROM e2e_cross_signing_keys WHERE user_id = ? AND key_type = ?', [userId, k.keyType]);
    await tx.execute(
      `INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json, ts_added_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, key_type) DO UPDATE SET public_key = excluded.public_key, key_json = excluded.key_json, ts_added_ms = excluded.ts_added_ms`,
      [userId, k.keyType, k.publicKey, JSON.stringify(k.key), Date.now()],
    );
    // Signatures on a replaced key no longer apply.
    if (prev && prev.public_key !== k.publicKey) {
      await tx.execute('DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ? AND target_key_id = ?', [userId, prev.public_key]);
    }
  }

  async getSignatures(targets: Array<{ userId: string; keyIds: string[] }>): Promise<StoredSignature[]> {
    const out: StoredSignature[] = [];
    const users = targets.filter((t) => t.keyIds.length);
    for (let i = 0; i < users.length; i += 200) {
      const chunk = users.slice(i, i + 200);
      const rows = await this.db.query<{ user_id: string; key_id: string; target_user_id: string; target_key_id: string; signature: string }>(
        `SELECT user_id, key_id, target_user_id, target_key_id, signature FROM e2e_cross_signing_signatures
         WHERE target_user_id IN (${placeholders(chunk.length)})`,
        chunk.map((t) => t.userId),
      );
      const wanted = new Map(chunk.map((t) => [t.userId, new Set(t.keyIds)]));
      for (const r of rows) {
        if (!wanted.get(r.target_user_id)?.has(r.target_key_id)) continue;
        out.push({ userId: r.user_id, keyId: r.key_id, targetUserId: r.target_user_id, targetKeyId: r.target_key_id, signature: r.signature });
      }
    }
    return out;
  }

  async addSignatures(tx: Queryable, sigs: StoredSignature[]): Promise<void> {
    for (const s of sigs) {
      await tx.execute(
        `INSERT INTO e2e_cross_signing_signatures (user_id, key_id, target_user_id, target_key_id, signature) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (target_user_id, target_key_id, user_id, key_id) DO UPDATE SET signature = excluded.signature`,
        [s.userId, s.keyId, s.targetUserId, s.targetKeyId, s.signature],
      );
    }
  }

  async addDeviceListChanges(tx: Queryable, position: number, userIds: string[]): Promise<void> {
    for (const u of new Set(userIds)) {
      await tx.execute('INSERT INTO device_lists_stream (stream_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING', [position, u]);
    }
  }

  async deviceListChangesInRange(from: number, to: number, userIds?: string[]): Promise<string[]> {
    if (to <= from) return [];
    if (userIds && !userIds.length) return [];
    if (!userIds) {
      const rows = await this.db.query<{ user_id: string }>('SELECT DISTINCT user_id FROM device_lists_stream WHERE stream_id > ? AND stream_id <= ?', [from, to]);
      return rows.map((r) => r.user_id);
    }
    const out: string[] = [];
    for (let i = 0; i < userIds.length; i += 500) {
      const chunk = userIds.slice(i, i + 500);
      const rows = await this.db.query<{ user_id: string }>(
        `SELECT DISTINCT user_id FROM device_lists_stream WHERE stream_id > ? AND stream_id <= ? AND user_id IN (${placeholders(chunk.length)})`,
        [from, to, ...chunk],
      );
      out.push(...rows.map((r) => r.user_id));
    }
    return out;
  }
}
