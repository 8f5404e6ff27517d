/**
 * The accounts store: one interface, one SQL implementation that runs on both
 * engines (the SQL is in the subset SQLite and PostgreSQL share).
 */
import type { Db, Queryable } from '../../storage/db.js';
import { placeholders } from '../../storage/db.js';

export interface UserRow {
  name: string;
  password_hash: string | null;
  creation_ts: number;
  admin: boolean;
  is_guest: boolean;
  deactivated: boolean;
  user_type: string | null;
}

export interface DeviceRow {
  user_id: string;
  device_id: string;
  display_name: string | null;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
  last_seen_user_agent: string | null;
}

export interface AccessTokenRow {
  id: number;
  user_id: string;
  device_id: string | null;
  valid_until_ms: number | null;
  refresh_token_id: number | null;
  used: boolean;
  is_guest: boolean;
  deactivated: boolean;
}

export interface RefreshTokenRow {
  id: number;
  user_id: string;
  device_id: string;
  next_token_id: number | null;
  expiry_ts: number | null;
}

export interface NewUser {
  userId: string;
  passwordHash: string | null;
  admin?: boolean;
  isGuest?: boolean;
  userType?: string | null;
  displayname?: string | null;
}

export interface ProfileRow {
  displayname: string | null;
  avatar_url: string | null;
}

export interface RegistrationTokenRow {
  token: string;
  uses_allowed: number | null;
  pending: number;
  completed: number;
  expiry_time: number | null;
}

function toUser(r: any): UserRow {
  return {
    name: r.name,
    password_hash: r.password_hash ?? null,
    creation_ts: Number(r.creation_ts),
    admin: !!Number(r.admin),
    is_guest: !!Number(r.is_guest),
    deactivated: !!Number(r.deactivated),
    user_type: r.user_type ?? null,
  };
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint/.test(err?.message ?? '');
}

export class AccountsStore {
  constructor(readonly db: Db) {}

  // ---- users ---------------------------------------------------------------

  async getUser(userId: string): Promise<UserRow | undefined> {
    const r = await this.db.queryOne('SELECT * FROM users WHERE name = ?', [userId]);
    return r ? toUser(r) : undefined;
  }

  /** Case-insensitive lookup (login accepts `@Alice` for `@alice`). Returns every match. */
  async findUsersCaseInsensitive(userId: string): Promise<UserRow[]> {
    const rows = await this.db.query('SELECT * FROM users WHERE LOWER(name) = LOWER(?)', [userId]);
    return rows.map(toUser);
  }

  /**
   * Creates the user, its profile and (optionally) a device in one
   * transaction. Returns false if the user id is taken.
   */
  async createUser(u: NewUser, now = Date.now()): Promise<boolean> {
    try {
      await this.db.transaction(async (tx) => {
        await tx.execute(
          'INSERT INTO users (name, password_hash, creation_ts, admin, is_guest, deactivated, user_type) VALUES (?, ?, ?, ?, ?, 0, ?)',
          [u.userId, u.passwordHash, now, u.admin ? 1 : 0, u.isGuest ? 1 : 0, u.userType ?? null],
        );
        await tx.execute(
          'INSERT INTO profiles (user_id, displayname, avatar_url) VALUES (?, ?, NULL) ON CONFLICT (user_id) DO NOTHING',
          [u.userId, u.displayname ?? null],
        );
      });
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async setPasswordHash(userId: string, hash: string | null): Promise<void> {
    await this.db.execute('UPDATE users SET password_hash = ? WHERE name = ?', [hash, userId]);
  }

  async setAdmin(userId: string, admin: boolean): Promise<void> {
    await this.db.execute('UPDATE users SET admin = ? WHERE name = ?', [admin ? 1 : 0, userId]);
  }

  /** Marks the account deactivated and removes its password, tokens and devices; returns the device ids removed. */
  async deactivateUser(userId: string): Promise<string[]> {
    return this.db.transaction(async (tx) => {
      await tx.execute('UPDATE users SET deactivated = 1, password_hash = NULL WHERE name = ?', [userId]);
      const devices = await tx.query<{ device_id: string }>('SELECT device_id FROM devices WHERE user_id = ?', [userId]);
      await tx.execute('DELETE FROM access_tokens WHERE user_id = ?', [userId]);
      await tx.execute('DELETE FROM refresh_tokens WHERE user_id = ?', [userId]);
      await tx.execute('DELETE FROM devices WHERE user_id = ?', [userId]);
      return devices.map((d) => d.device_id);
    });
  }

  async countUsers(): Promise<number> {
    const r = await this.db.queryOne<{ n: number }>('SELECT COUNT(*) AS n FROM users');
    return Number(r?.n ?? 0);
  }

  // ---- profiles ------------------------------------------------------------

  async getProfile(userId: string): Promise<ProfileRow | undefined> {
    return this.db.queryOne<ProfileRow>('SELECT displayname, avatar_url FROM profiles WHERE user_id = ?', [userId]);
  }

  async setProfileField(userId: string, field: 'displayname' | 'avatar_url', value: string | null): Promise<void> {
    // field is one of two fixed column names, never user input
    await this.db.execute(
      `INSERT INTO profiles (user_id, ${field}) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET ${field} = excluded.${field}`,
      [userId, value],
    );
  }

  // ---- devices ---------------------------------------------------------------

  /** Creates the device, or keeps an existing one (updating its name only if one is given). */
  async upsertDevice(userId: string, deviceId: string, displayName: string | null | undefined, q: Queryable = this.db): Promise<boolean> {
    const existed = await q.queryOne('SELECT 1 AS x FROM devices WHERE user_id = ? AND device_id = ?', [userId, deviceId]);
    if (existed) {
      if (displayName != null) {
        await q.execute('UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?', [displayName, userId, deviceId]);
      }
      return false;
    }
    await q.execute(
      'INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO NOTHING',
      [userId, deviceId, displayName ?? null, Date.now()],
    );
    return true;
  }

  async getDevice(userId: string, deviceId: string): Promise<DeviceRow | undefined> {
    return this.db.queryOne<DeviceRow>(
      'SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent FROM devices WHERE user_id = ? AND device_id = ?',
      [userId, deviceId],
    );
  }

  async listDevices(userId: string): Promise<DeviceRow[]> {
    return this.db.query<DeviceRow>(
      'SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent FROM devices WHERE user_id = ? ORDER BY device_id',
      [userId],
    );
  }

  async setDeviceDisplayName(userId: string, deviceId: string, name: string | null): Promise<boolean> {
    return (await this.db.execute('UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?', [name, userId, deviceId])) > 0;
  }

  async updateDeviceLastSeen(userId: string, deviceId: string, ts: number, ip: string, userAgent: string | null): Promise<void> {
    await this.db.execute(
      'UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?, last_seen_user_agent = ? WHERE user_id = ? AND device_id = ?',
      [ts, ip, userAgent, userId, deviceId],
    );
  }

  /** Deletes devices and every token bound to them; returns the ids that existed. */
  async deleteDevices(userId: string, deviceIds: string[]): Promise<string[]> {
    if (!deviceIds.length) return [];
    return this.db.transaction(async (tx) => {
      const ph = placeholders(deviceIds.length);
      const existing = await tx.query<{ device_id: string }>(
        `SELECT device_id FROM devices WHERE user_id = ? AND device_id IN (${ph})`,
        [userId, ...deviceIds],
      );
      await tx.execute(`DELETE FROM access_tokens WHERE user_id = ? AND device_id IN (${ph})`, [userId, ...deviceIds]);
      await tx.execute(`DELETE FROM refresh_tokens WHERE user_id = ? AND device_id IN (${ph})`, [userId, ...deviceIds]);
      await tx.execute(`DELETE FROM devices WHERE user_id = ? AND device_id IN (${ph})`, [userId, ...deviceIds]);
      return existing.map((d) => d.device_id);
    });
  }

  // ---- access and refresh tokens ----------------------------------------------

  async insertAccessToken(
    t: { userId: string; deviceId: string | null; tokenHash: string; validUntilMs: number | null; refreshTokenId: number | null },
    q: Queryable = this.db,
  ): Promise<number> {
    const rows = await q.query<{ id: number }>(
      'INSERT INTO access_tokens (user_id, device_id, token_hash, valid_until_ms, refresh_token_id, used, created_ts) VALUES (?, ?, ?, ?, ?, 0, ?) RETURNING id',
      [t.userId, t.deviceId, t.tokenHash, t.validUntilMs, t.refreshTokenId, Date.now()],
    );
    return Number(rows[0]!.id);
  }

  async insertRefreshToken(t: { userId: string; deviceId: string; tokenHash: string; expiryTs: number | null }, q: Queryable = this.db): Promise<number> {
    const rows = await q.query<{ id: number }>(
      'INSERT INTO refresh_tokens (user_id, device_id, token_hash, next_token_id, expiry_ts, created_ts) VALUES (?, ?, ?, NULL, ?, ?) RETURNING id',
      [t.userId, t.deviceId, t.tokenHash, t.expiryTs, Date.now()],
    );
    return Number(rows[0]!.id);
  }

  async getAccessToken(tokenHash: string): Promise<AccessTokenRow | undefined> {
    const r = await this.db.queryOne(
      `SELECT t.id, t.user_id, t.device_id, t.valid_until_ms, t.refresh_token_id, t.used, u.is_guest, u.deactivated
       FROM access_tokens t JOIN users u ON u.name = t.user_id WHERE t.token_hash = ?`,
      [tokenHash],
    );
    if (!r) return undefined;
    return {
      id: Number(r.id),
      user_id: r.user_id,
      device_id: r.device_id ?? null,
      valid_until_ms: r.valid_until_ms == null ? null : Number(r.valid_until_ms),
      refresh_token_id: r.refresh_token_id == null ? null : Number(r.refresh_token_id),
      used: !!Number(r.used),
      is_guest: !!Number(r.is_guest),
      deactivated: !!Number(r.deactivated),
    };
  }

  /**
   * First use of an access token made by /refresh: the refresh token it
   * replaced is revoked now (spec: "the old refresh token remains valid until
   * the new access token or refresh token is used").
   */
  async markAccessTokenUsed(tokenId: number, refreshTokenId: number | null): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.execute('UPDATE access_tokens SET used = 1 WHERE id = ?', [tokenId]);
      if (refreshTokenId !== null) await tx.execute('DELETE FROM refresh_tokens WHERE next_token_id = ?', [refreshTokenId]);
    });
  }

  async getRefreshToken(tokenHash: string, q: Queryable = this.db): Promise<RefreshTokenRow | undefined> {
    const r = await q.queryOne('SELECT id, user_id, device_id, next_token_id, expiry_ts FROM refresh_tokens WHERE token_hash = ?', [tokenHash]);
    if (!r) return undefined;
    return {
      id: Number(r.id),
      user_id: r.user_id,
      device_id: r.device_id,
      next_token_id: r.next_token_id == null ? null : Number(r.next_token_id),
      expiry_ts: r.expiry_ts == null ? null : Number(r.expiry_ts),
    };
  }

  /** Returns the hashes of the deleted tokens (to drop them from caches). */
  async deleteAccessTokens(where: { id?: number; userId: string; exceptId?: number; deviceId?: string }): Promise<string[]> {
    let sql = 'FROM access_tokens WHERE user_id = ?';
    const params: unknown[] = [where.userId];
    if (where.id !== undefined) {
      sql += ' AND id = ?';
      params.push(where.id);
    }
    if (where.exceptId !== undefined) {
      sql += ' AND id <> ?';
      params.push(where.exceptId);
    }
    if (where.deviceId !== undefined) {
      sql += ' AND device_id = ?';
      params.push(where.deviceId);
    }
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{ token_hash: string }>(`SELECT token_hash ${sql}`, params);
      await tx.execute(`DELETE ${sql}`, params);
      return rows.map((r) => r.token_hash);
    });
  }

  async tokenHashesOf(userId: string, deviceIds?: string[]): Promise<string[]> {
    if (deviceIds && !deviceIds.length) return [];
    const rows = deviceIds
      ? await this.db.query<{ token_hash: string }>(
          `SELECT token_hash FROM access_tokens WHERE user_id = ? AND device_id IN (${placeholders(deviceIds.length)})`,
          [userId, ...deviceIds],
        )
      : await this.db.query<{ token_hash: string }>('SELECT token_hash FROM access_tokens WHERE user_id = ?', [userId]);
    return rows.map((r) => r.token_hash);
  }

  // ---- shared-secret registration nonces -----------------------------------------

  async addNonce(nonce: string, now = Date.now()): Promise<void> {
    await this.db.execute('INSERT INTO registration_nonces (nonce, created_ts) VALUES (?, ?)', [nonce, now]);
    await this.db.execute('DELETE FROM registration_nonces WHERE created_ts < ?', [now - 24 * 3600_000]);
  }

  /** Consumes a nonce: true if it existed and was younger than maxAgeMs. Single use either way. */
  async takeNonce(nonce: string, maxAgeMs: number, now = Date.now()): Promise<boolean> {
    const rows = await this.db.query<{ created_ts: number }>('DELETE FROM registration_nonces WHERE nonce = ? RETURNING created_ts', [nonce]);
    return rows.length > 0 && Number(rows[0]!.created_ts) >= now - maxAgeMs;
  }

  // ---- user-interactive auth sessions ----------------------------------------------

  async createUiaSession(
    s: { sessionId: string; uri: string; method: string; clientdict: unknown; serverdict: unknown },
    now = Date.now(),
  ): Promise<void> {
    await this.db.execute(
      'INSERT INTO ui_auth_sessions (session_id, creation_ts, uri, method, clientdict, serverdict) VALUES (?, ?, ?, ?, ?, ?)',
      [s.sessionId, now, s.uri, s.method, JSON.stringify(s.clientdict ?? {}), JSON.stringify(s.serverdict ?? {})],
    );
  }

  async getUiaSession(
    sessionId: string,
  ): Promise<{ creationTs: number; uri: string; method: string; clientdict: Record<string, any>; serverdict: Record<string, any> } | undefined> {
    const r = await this.db.queryOne('SELECT * FROM ui_auth_sessions WHERE session_id = ?', [sessionId]);
    if (!r) return undefined;
    return { creationTs: Number(r.creation_ts), uri: r.uri, method: r.method, clientdict: JSON.parse(r.clientdict), serverdict: JSON.parse(r.serverdict) };
  }

  async setUiaClientdict(sessionId: string, clientdict: unknown): Promise<void> {
    await this.db.execute('UPDATE ui_auth_sessions SET clientdict = ? WHERE session_id = ?', [JSON.stringify(clientdict), sessionId]);
  }

  async setUiaServerdict(sessionId: string, serverdict: unknown): Promise<void> {
    await this.db.execute('UPDATE ui_auth_sessions SET serverdict = ? WHERE session_id = ?', [JSON.stringify(serverdict), sessionId]);
  }

  async markUiaStage(sessionId: string, stage: string, result: unknown): Promise<void> {
    await this.db.execute(
      'INSERT INTO ui_auth_sessions_credentials (session_id, stage_type, result) VALUES (?, ?, ?) ON CONFLICT (session_id, stage_type) DO UPDATE SET result = excluded.result',
      [sessionId, stage, JSON.stringify(result)],
    );
  }

  async getUiaStages(sessionId: string): Promise<Record<string, unknown>> {
    const rows = await this.db.query<{ stage_type: string; result: string }>(
      'SELECT stage_type, result FROM ui_auth_sessions_credentials WHERE session_id = ?',
      [sessionId],
    );
    return Object.fromEntries(rows.map((r) => [r.stage_type, JSON.parse(r.result)]));
  }

  async deleteUiaSession(sessionId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.execute('DELETE FROM ui_auth_sessions_credentials WHERE session_id = ?', [sessionId]);
      await tx.execute('DELETE FROM ui_auth_sessions WHERE session_id = ?', [sessionId]);
    });
  }

  async deleteExpiredUiaSessions(olderThan: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.execute(
        'DELETE FROM ui_auth_sessions_credentials WHERE session_id IN (SELECT session_id FROM ui_auth_sessions WHERE creation_ts < ?)',
        [olderThan],
      );
      await tx.execute('DELETE FROM ui_auth_sessions WHERE creation_ts < ?', [olderThan]);
    });
  }

  // ---- registration tokens -------------------------------------------------------

  async createRegistrationToken(t: { token: string; usesAllowed: number | null; expiryTime: number | null }): Promise<boolean> {
    try {
      await this.db.execute('INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time) VALUES (?, ?, 0, 0, ?)', [
        t.token,
        t.usesAllowed,
        t.expiryTime,
      ]);
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async getRegistrationToken(token: string): Promise<RegistrationTokenRow | undefined> {
    const r = await this.db.queryOne('SELECT * FROM registration_tokens WHERE token = ?', [token]);
    return r ? toRegToken(r) : undefined;
  }

  async listRegistrationTokens(): Promise<RegistrationTokenRow[]> {
    return (await this.db.query('SELECT * FROM registration_tokens ORDER BY token')).map(toRegToken);
  }

  /**
   * Counts one completed registration against the token, if it still has a
   * use left and has not expired (checked in the same statement, so two
   * registrations cannot both take the last use).
   */
  async useRegistrationToken(token: string, now = Date.now()): Promise<boolean> {
    const n = await this.db.execute(
      `UPDATE registration_tokens SET completed = completed + 1
       WHERE token = ? AND (uses_allowed IS NULL OR pending + completed < uses_allowed) AND (expiry_time IS NULL OR expiry_time > ?)`,
      [token, now],
    );
    return n > 0;
  }

  // ---- filters -----------------------------------------------------------------

  async addFilter(userId: string, json: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction(async (tx) => {
          // PostgreSQL: serialise uploads of one user (SQLite transactions are serial anyway)
          if (tx.engine === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(hashtext(?))', [`filters:${userId}`]);
          const r = await tx.queryOne<{ m: number | null }>('SELECT MAX(filter_id) AS m FROM user_filters WHERE user_id = ?', [userId]);
          const id = r?.m == null ? 0 : Number(r.m) + 1;
          await tx.execute('INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)', [userId, id, json]);
          return id;
        });
      } catch (e) {
        // two concurrent uploads on PostgreSQL may pick the same id: retry
        if (attempt < 5 && isUniqueViolation(e)) continue;
        throw e;
      }
    }
  }

  async getFilter(userId: string, filterId: number): Promise<string | undefined> {
    const r = await this.db.queryOne<{ filter_json: string }>('SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?', [
      userId,
      filterId,
    ]);
    return r?.filter_json;
  }
}

function toRegToken(r: any): RegistrationTokenRow {
  return {
    token: r.token,
    uses_allowed: r.uses_allowed == null ? null : Number(r.uses_allowed),
    pending: Number(r.pending),
    completed: Number(r.completed),
    expiry_time: r.expiry_time == null ? null : Number(r.expiry_time),
  };
}
