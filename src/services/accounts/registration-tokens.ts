/**
 * Registration tokens (m.login.registration_token, spec v1.2): an operator
 * creates tokens (Synapse's admin API shapes); registration requires one
 * when `registration_requires_token` is on.
 */
import { Errors } from '../../util/errors.js';
import type { AccountsStore, RegistrationTokenRow } from './store.js';
import { randomString } from './tokens.js';

const TOKEN_RE = /^[A-Za-z0-9._~-]{1,64}$/;
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-';

export class RegistrationTokenService {
  constructor(
    private readonly store: AccountsStore,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Creates a token (random when not given); throws M_INVALID_PARAM for bad values or a taken token. */
  async create(opts: { token?: string; usesAllowed?: number | null; expiryTime?: number | null; length?: number }): Promise<RegistrationTokenRow> {
    const usesAllowed = opts.usesAllowed ?? null;
    const expiryTime = opts.expiryTime ?? null;
    if (usesAllowed !== null && (!Number.isInteger(usesAllowed) || usesAllowed < 0)) {
      throw Errors.invalidParam('uses_allowed must be a non-negative integer or null');
    }
    if (expiryTime !== null && (!Number.isInteger(expiryTime) || expiryTime < this.clock())) {
      throw Errors.invalidParam('expiry_time must not be in the past');
    }
    if (opts.token !== undefined) {
      if (!TOKEN_RE.test(opts.token)) throw Errors.invalidParam('token must consist of 1-64 characters from A-Z a-z 0-9 . _ ~ -');
      if (!(await this.store.createRegistrationToken({ token: opts.token, usesAllowed, expiryTime }))) {
        throw Errors.invalidParam(`Token already exists: ${opts.token}`);
      }
      return (await this.store.getRegistrationToken(opts.token))!;
    }
    const length = opts.length ?? 16;
    if (!Number.isInteger(length) || length < 1 || length > 64) throw Errors.invalidParam('length must be an integer between 1 and 64');
    for (let i = 0; i < 10; i++) {
      const token = randomString(length, TOKEN_ALPHABET);
      if (await this.store.createRegistrationToken({ token, usesAllowed, expiryTime })) return (await this.store.getRegistrationToken(token))!;
    }
    throw Errors.unknown('Could not generate a unique token', 500);
  }

  async list(): Promise<RegistrationTokenRow[]> {
    return this.store.listRegistrationTokens();
  }

  async get(token: string): Promise<RegistrationTokenRow | undefined> {
    return this.store.getRegistrationToken(token);
  }

  /** Whether a registration could use this token now. */
  async isValid(token: string): Promise<boolean> {
    const t = await this.store.getRegistrationToken(token);
    if (!t) return false;
    if (t.expiry_time !== null && t.expiry_time <= this.clock()) return false;
    if (t.uses_allowed !== null && t.pending + t.completed >= t.uses_allowed) return false;
    return true;
  }

  /** Counts a completed registration; false if the token was used up or expired meanwhile. */
  async use(token: string): Promise<boolean> {
    return this.store.useRegistrationToken(token, this.clock());
  }
}
