/**
 * Server-side key backups (client-server API, "Server-side key backups").
 * Keys may only be written to the current (latest, not deleted) version; a
 * stored session is replaced only by a better one.
 */
import type { BackedUpSession, BackupStore, BackupVersion } from '../../storage/e2ee/backup-store.js';
import { Errors, MatrixError } from '../../util/errors.js';
import { isObject } from './validate-keys.js';

export const BACKUP_ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';
/** Algorithms accepted for new backups. */
const ALGORITHMS = new Set([BACKUP_ALGORITHM, 'org.matrix.msc3270.v1.aes-hmac-sha2']);

export interface RoomKeysUpdate {
  etag: string;
  count: number;
}

/**
 * The spec's order of preference between two copies of a session: verified
 * beats unverified, then the lower first_message_index, then the lower
 * forwarded_count. True when `candidate` should replace `existing`.
 */
export function isBetterSession(candidate: BackedUpSession, existing: BackedUpSession): boolean {
  if (candidate.isVerified !== existing.isVerified) return candidate.isVerified;
  if (candidate.firstMessageIndex !== existing.firstMessageIndex) return candidate.firstMessageIndex < existing.firstMessageIndex;
  return candidate.forwardedCount < existing.forwardedCount;
}

function nonNegativeInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw Errors.badJson(`'${name}' must be a non-negative integer`);
  return v;
}

/** Validates one KeyBackupData object. */
export function parseKeyBackupData(roomId: string, sessionId: string, v: unknown): BackedUpSession {
  if (!isObject(v)) throw Errors.badJson('key backup data must be an object');
  if (typeof v.is_verified !== 'boolean') throw Errors.badJson("'is_verified' must be a boolean");
  if (!isObject(v.session_data)) throw Errors.badJson("'session_data' must be an object");
  return {
    roomId,
    sessionId,
    firstMessageIndex: nonNegativeInt(v.first_message_index, 'first_message_index'),
    forwardedCount: nonNegativeInt(v.forwarded_count, 'forwarded_count'),
    isVerified: v.is_verified,
    sessionData: v.session_data,
  };
}

export function sessionToClient(s: BackedUpSession): Record<string, unknown> {
  return {
    first_message_index: s.firstMessageIndex,
    forwarded_count: s.forwardedCount,
    is_verified: s.isVerified,
    session_data: s.sessionData,
  };
}

/** Backup versions are decimal integers; anything else names no backup. */
function parseVersion(v: string | undefined): number | undefined {
  if (v === undefined || !/^[0-9]{1,15}$/.test(v)) return undefined;
  return Number(v);
}

const unknownVersion = () => Errors.notFound('Unknown backup version');

export class KeyBackupService {
  constructor(private readonly store: BackupStore) {}

  async createVersion(userId: string, body: Record<string, any>): Promise<{ version: string }> {
    const { algorithm, authData } = this.parseVersionBody(body);
    const version = await this.store.createVersion(userId, algorithm, authData);
    return { version: String(version) };
  }

  private parseVersionBody(body: Record<string, any>): { algorithm: string; authData: Record<string, any> } {
    const algorithm = body.algorithm;
    if (algorithm === undefined) throw Errors.missingParam('algorithm');
    if (typeof algorithm !== 'string') throw Errors.badJson("'algorithm' must be a string");
    if (!ALGORITHMS.has(algorithm)) throw Errors.invalidParam(`Unsupported backup algorithm ${algorithm}`);
    if (body.auth_data === undefined) throw Errors.missingParam('auth_data');
    if (!isObject(body.auth_data)) throw Errors.badJson("'auth_data' must be an object");
    return { algorithm, authData: body.auth_data };
  }

  private async versionInfo(userId: string, v: BackupVersion): Promise<Record<string, unknown>> {
    return {
      algorithm: v.algorithm,
      auth_data: v.authData,
      version: String(v.version),
      etag: String(v.etag),
      count: await this.store.countKeys(userId, v.version),
    };
  }

  /** GET /room_keys/version[/{version}]: without a version, the current one. */
  async getVersion(userId: string, version?: string): Promise<Record<string, unknown>> {
    let v: BackupVersion | undefined;
    if (version === undefined) v = await this.store.getCurrentVersion(userId);
    else {
      const n = parseVersion(version);
      v = n === undefined ? undefined : await this.store.getVersion(userId, n);
    }
    if (!v || v.deleted) throw unknownVersion();
    return this.versionInfo(userId, v);
  }

  async updateVersion(userId: string, version: string, body: Record<string, any>): Promise<Record<string, never>> {
    const n = parseVersion(version);
    const v = n === undefined ? undefined : await this.store.getVersion(userId, n);
    if (!v || v.deleted) throw unknownVersion();
    const { algorithm, authData } = this.parseVersionBody(body);
    if (body.version !== undefined && body.version !== version) throw Errors.invalidParam('Version in body does not match the path');
    if (algorithm !== v.algorithm) throw Errors.invalidParam('Algorithm does not match');
    await this.store.updateAuthData(userId, v.version, authData);
    return {};
  }

  /** Deleting an already deleted version succeeds; an unknown one is 404. */
  async deleteVersion(userId: string, version: string): Promise<Record<string, never>> {
    const n = parseVersion(version);
    const v = n === undefined ? undefined : await this.store.getVersion(userId, n);
    if (!v) throw unknownVersion();
    if (!v.deleted) await this.store.deleteVersion(userId, v.version);
    return {};
  }

  /** The version keys are written to: must be the current one. */
  private async writableVersion(userId: string, version: string | undefined): Promise<BackupVersion> {
    if (version === undefined || version === '') throw Errors.missingParam('version');
    const current = await this.store.getCurrentVersion(userId);
    if (!current) throw unknownVersion();
    if (String(current.version) !== version) {
      throw new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version.', { current_version: String(current.version) });
    }
    return current;
  }

  /** A readable (existing, not deleted) version. */
  private async readableVersion(userId: string, version: string | undefined): Promise<BackupVersion> {
    if (version === undefined || version === '') throw Errors.missingParam('version');
    const n = parseVersion(version);
    const v = n === undefined ? undefined : await this.store.getVersion(userId, n);
    if (!v || v.deleted) throw unknownVersion();
    return v;
  }

  /** PUT keys: stores each session unless the stored copy is at least as good. */
  async putKeys(userId: string, version: string | undefined, sessions: BackedUpSession[]): Promise<RoomKeysUpdate> {
    const v = await this.writableVersion(userId, version);
    return this.store.transaction(async (tx) => {
      let changed = false;
      for (const s of sessions) {
        const old = await this.store.getSession(tx, userId, v.version, s.roomId, s.sessionId);
        if (old && !isBetterSession(s, old)) continue;
        await this.store.putSession(tx, userId, v.version, s);
        changed = true;
      }
      if (changed) await this.store.bumpEtag(tx, userId, v.version);
      const after = await this.store.getVersion(userId, v.version, tx);
      return { etag: String(after?.etag ?? v.etag), count: await this.store.countKeys(userId, v.version, tx) };
    });
  }

  async getKeys(userId: string, version: string | undefined, roomId?: string, sessionId?: string): Promise<Record<string, unknown>> {
    const v = await this.readableVersion(userId, version);
    const sessions = await this.store.getSessions(userId, v.version, roomId, sessionId);
    if (sessionId !== undefined) {
      if (!sessions.length) throw Errors.notFound('No room_keys found');
      return sessionToClient(sessions[0]!);
    }
    if (roomId !== undefined) {
      return { sessions: Object.fromEntries(sessions.map((s) => [s.sessionId, sessionToClient(s)])) };
    }
    const rooms: Record<string, { sessions: Record<string, unknown> }> = {};
    for (const s of sessions) (rooms[s.roomId] ??= { sessions: {} }).sessions[s.sessionId] = sessionToClient(s);
    return { rooms };
  }

  async deleteKeys(userId: string, version: string | undefined, roomId?: string, sessionId?: string): Promise<RoomKeysUpdate> {
    const v = await this.readableVersion(userId, version);
    return this.store.transaction(async (tx) => {
      const n = await this.store.deleteSessions(tx, userId, v.version, roomId, sessionId);
      if (n > 0) await this.store.bumpEtag(tx, userId, v.version);
      const after = await this.store.getVersion(userId, v.version, tx);
      return { etag: String(after?.etag ?? v.etag), count: await this.store.countKeys(userId, v.version, tx) };
    });
  }
}
