/**
 * Accounts of local users: registration, login, access and refresh tokens,
 * logout, password changes and deactivation.
 */
import { randomInt } from 'node:crypto';
import type { Requester } from '../../api/types.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { TokenAuthenticator } from './authenticator.js';
import type { DeviceService } from './device-service.js';
import type { PasswordHasher } from './passwords.js';
import type { AccountsStore, UserRow } from './store.js';
import { generateDeviceId, generateToken, hashToken } from './tokens.js';
import { validateLocalpart } from './usernames.js';

export interface SessionTokens {
  user_id: string;
  access_token: string;
  device_id: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

export interface AccountSettings {
  serverName: string;
  /** Lifetime of access tokens that come with a refresh token (ms). */
  refreshableAccessTokenLifetimeMs: number;
  /** Lifetime of refresh tokens (ms), undefined for no expiry. */
  refreshTokenLifetimeMs?: number;
  /** Lifetime of non-refreshable access tokens (`session_lifetime`), undefined for none. */
  sessionLifetimeMs?: number;
}

export type UserListener = (userId: string) => Promise<void> | void;

export class AccountService {
  /** Called after a user was created (user directory, ...). */
  readonly onUserRegistered: UserListener[] = [];
  /** Called after an account was deactivated (rooms: leave everything). */
  readonly onUserDeactivated: UserListener[] = [];

  constructor(
    private readonly store: AccountsStore,
    private readonly hasher: PasswordHasher,
    private readonly devices: DeviceService,
    private readonly auth: TokenAuthenticator,
    readonly settings: AccountSettings,
  ) {}

  get serverName(): string {
    return this.settings.serverName;
  }

  userIdOf(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  isLocalUserId(userId: string): boolean {
    return userId.startsWith('@') && userId.endsWith(`:${this.serverName}`);
  }

  async getUser(userId: string): Promise<UserRow | undefined> {
    return this.store.getUser(userId);
  }

  async userExists(userId: string): Promise<boolean> {
    return (await this.store.getUser(userId)) !== undefined;
  }

  async isAdmin(userId: string): Promise<boolean> {
    return (await this.store.getUser(userId))?.admin ?? false;
  }

  async setAdmin(userId: string, admin: boolean): Promise<void> {
    await this.store.setAdmin(userId, admin);
  }

  /** Throws M_INVALID_USERNAME or M_USER_IN_USE unless the localpart can be registered. */
  async checkUsernameAvailable(localpart: string): Promise<void> {
    validateLocalpart(localpart, this.serverName);
    const existing = await this.store.findUsersCaseInsensitive(this.userIdOf(localpart));
    if (existing.length) throw Errors.userInUse();
  }

  /**
   * Creates an account. Without a localpart a numeric one is chosen (guests
   * always get one). Throws M_USER_IN_USE if the id is taken.
   */
  async register(opts: {
    localpart?: string;
    password?: string | null;
    admin?: boolean;
    guest?: boolean;
    displayname?: string | null;
    userType?: string | null;
  }): Promise<string> {
    const hash = opts.password != null ? await this.hasher.hash(opts.password) : null;
    if (opts.localpart === undefined || opts.guest) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const localpart = String(randomInt(1, 2 ** 47));
        const userId = this.userIdOf(localpart);
        if (await this.store.createUser({ userId, passwordHash: hash, admin: opts.admin, isGuest: opts.guest, displayname: opts.displayname ?? (opts.guest ? null : localpart) })) {
          await this.fireUser(this.onUserRegistered, userId);
          return userId;
        }
      }
      throw Errors.unknown('Could not allocate a user id', 500);
    }
    validateLocalpart(opts.localpart, this.serverName);
    const userId = this.userIdOf(opts.localpart);
    if ((await this.store.findUsersCaseInsensitive(userId)).length) throw Errors.userInUse();
    const ok = await this.store.createUser({
      userId,
      passwordHash: hash,
      admin: opts.admin,
      isGuest: false,
      userType: opts.userType ?? null,
      displayname: opts.displayname ?? opts.localpart,
    });
    if (!ok) throw Errors.userInUse();
    await this.fireUser(this.onUserRegistered, userId);
    return userId;
  }

  /**
   * Logs a user in on a device: creates the device (or reuses `deviceId`) and
   * issues an access token, plus a refresh token when asked.
   */
  async issueSession(
    userId: string,
    opts: { deviceId?: string; deviceDisplayName?: string | null; refreshable?: boolean } = {},
  ): Promise<SessionTokens> {
    const deviceId = opts.deviceId ?? generateDeviceId();
    await this.devices.ensureDevice(userId, deviceId, opts.deviceDisplayName ?? null);
    return this.issueTokens(userId, deviceId, !!opts.refreshable);
  }

  private async issueTokens(userId: string, deviceId: string, refreshable: boolean): Promise<SessionTokens> {
    const localpart = userId.slice(1, userId.lastIndexOf(':'));
    const accessToken = generateToken('syt', localpart);
    const now = Date.now();
    if (!refreshable) {
      const validUntil = this.settings.sessionLifetimeMs ? now + this.settings.sessionLifetimeMs : null;
      await this.store.insertAccessToken({ userId, deviceId, tokenHash: hashToken(accessToken), validUntilMs: validUntil, refreshTokenId: null });
      return { user_id: userId, access_token: accessToken, device_id: deviceId };
    }
    const refreshToken = generateToken('syr', localpart);
    const lifetime = this.settings.refreshableAccessTokenLifetimeMs;
    await this.store.db.transaction(async (tx) => {
      const refreshId = await this.store.insertRefreshToken(
        {
          userId,
          deviceId,
          tokenHash: hashToken(refreshToken),
          expiryTs: this.settings.refreshTokenLifetimeMs ? now + this.settings.refreshTokenLifetimeMs : null,
        },
        tx,
      );
      await this.store.insertAccessToken(
        { userId, deviceId, tokenHash: hashToken(accessToken), validUntilMs: now + lifetime, refreshTokenId: refreshId },
        tx,
      );
    });
    return { user_id: userId, access_token: accessToken, device_id: deviceId, refresh_token: refreshToken, expires_in_ms: lifetime };
  }

  /**
   * Resolves what a client typed (localpart or full user id, any case) to an
   * existing local user id, or undefined.
   */
  async resolveLocalUser(input: string): Promise<string | undefined> {
    const userId = input.startsWith('@') ? input : this.userIdOf(input);
    if (!this.isLocalUserId(userId)) return undefined;
    const exact = await this.store.getUser(userId);
    if (exact) return exact.name;
    const matches = await this.store.findUsersCaseInsensitive(userId);
    // Ambiguous case-insensitive matches are refused rather than guessed.
    return matches.length === 1 ? matches[0]!.name : undefined;
  }

  /** True if the password is the user's (false for unknown, guest or deactivated accounts). */
  async checkPassword(userId: string, password: string): Promise<boolean> {
    const user = await this.store.getUser(userId);
    if (!user || user.deactivated) return false;
    return this.hasher.verify(password, user.password_hash);
  }

  /**
   * m.login.password: the user id for this identifier and password, or
   * 403 M_FORBIDDEN (the same answer for unknown users and wrong passwords),
   * 403 M_USER_DEACTIVATED for deactivated accounts.
   */
  async validatePasswordLogin(userInput: string, password: string): Promise<string> {
    const userId = await this.resolveLocalUser(userInput);
    const user = userId ? await this.store.getUser(userId) : undefined;
    if (user && user.deactivated) throw new MatrixError(403, 'M_USER_DEACTIVATED', 'This account has been deactivated');
    if (!user || !(await this.hasher.verify(password, user.password_hash))) throw Errors.forbidden('Invalid username or password');
    return user.name;
  }

  /** POST /refresh: exchanges a refresh token for a new access and refresh token. */
  async refresh(refreshToken: string): Promise<SessionTokens> {
    const row = await this.store.getRefreshToken(hashToken(refreshToken));
    if (!row) throw Errors.unknownToken(false);
    if (row.expiry_ts !== null && row.expiry_ts <= Date.now()) throw Errors.unknownToken(false);
    const user = await this.store.getUser(row.user_id);
    if (!user || user.deactivated) throw Errors.unknownToken(false);
    const issued = await this.issueTokens(row.user_id, row.device_id, true);
    const newRow = await this.store.getRefreshToken(hashToken(issued.refresh_token!));
    await this.store.db.transaction(async (tx) => {
      // The old refresh token stays valid until the new pair is used; the
      // access token it had produced ends now.
      await tx.execute('UPDATE refresh_tokens SET next_token_id = ? WHERE id = ?', [newRow!.id, row.id]);
      // Using a refresh token revokes the one it replaced.
      await tx.execute('DELETE FROM refresh_tokens WHERE next_token_id = ?', [row.id]);
      const old = await tx.query<{ token_hash: string }>('SELECT token_hash FROM access_tokens WHERE refresh_token_id = ?', [row.id]);
      await tx.execute('DELETE FROM access_tokens WHERE refresh_token_id = ?', [row.id]);
      this.auth.invalidate(old.map((o) => o.token_hash));
    });
    return issued;
  }

  /** POST /logout: the token's device (and with it every token of the device) goes away. */
  async logout(requester: Requester): Promise<void> {
    if (requester.deviceId) {
      await this.devices.deleteDevice(requester.userId, requester.deviceId);
    }
    const hashes = await this.store.deleteAccessTokens({ userId: requester.userId, id: requester.tokenId });
    this.auth.invalidate(hashes);
  }

  /** POST /logout/all: every device and token of the user. */
  async logoutAll(userId: string): Promise<void> {
    const devices = await this.devices.listDevices(userId);
    await this.devices.deleteDevices(
      userId,
      devices.map((d) => d.device_id),
    );
    const hashes = await this.store.deleteAccessTokens({ userId });
    this.auth.invalidate(hashes);
    this.auth.invalidateUser(userId);
  }

  /**
   * Sets a new password. With `logoutDevices`, every other device and token
   * is logged out; the requester's device and token stay.
   */
  async changePassword(userId: string, newPassword: string, opts: { logoutDevices: boolean; keep?: Requester }): Promise<void> {
    await this.store.setPasswordHash(userId, await this.hasher.hash(newPassword));
    if (!opts.logoutDevices) return;
    const keepDevice = opts.keep?.deviceId ?? null;
    const others = (await this.devices.listDevices(userId)).map((d) => d.device_id).filter((d) => d !== keepDevice);
    await this.devices.deleteDevices(userId, others);
    const hashes = await this.store.deleteAccessTokens({ userId, exceptId: opts.keep?.tokenId ?? -1 });
    this.auth.invalidate(hashes);
  }

  /** Deactivates an account: no more logins, every token dies, every device goes. */
  async deactivate(userId: string): Promise<void> {
    const hashes = await this.store.tokenHashesOf(userId);
    const devices = await this.store.deactivateUser(userId);
    this.auth.invalidate(hashes);
    this.auth.invalidateUser(userId);
    // Devices went in the same transaction; tell listeners (E2EE keys).
    for (const d of devices) for (const l of this.devices.onDeviceDeleted) await Promise.resolve(l(userId, d)).catch(() => {});
    await this.fireUser(this.onUserDeactivated, userId);
  }

  private async fireUser(listeners: UserListener[], userId: string): Promise<void> {
    for (const l of listeners) await l(userId);
  }
}
