/**
 * Shared-secret registration (Synapse's admin API, used by
 * register_new_matrix_user and `myelin register-user`): the client asks for a
 * nonce, then posts the user with an HMAC-SHA1 keyed by
 * `registration_shared_secret` over `nonce \0 user \0 password \0 admin|notadmin`.
 * Nonces are single use and expire after a minute.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Errors } from '../../util/errors.js';
import type { AccountsStore } from './store.js';

export const NONCE_LIFETIME_MS = 60_000;

export function sharedSecretMac(secret: string, nonce: string, user: string, password: string, admin: boolean, userType?: string): string {
  const h = createHmac('sha1', Buffer.from(secret, 'utf8'));
  h.update(nonce).update('\0').update(user).update('\0').update(password).update('\0').update(admin ? 'admin' : 'notadmin');
  if (userType) h.update('\0').update(userType);
  return h.digest('hex');
}

/** Constant-time comparison of two strings (false for different lengths). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    // compare anyway so that the time taken does not depend on where they differ
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

export class SharedSecretRegistration {
  constructor(
    private readonly store: AccountsStore,
    private readonly secret: string | undefined,
  ) {}

  get enabled(): boolean {
    return !!this.secret;
  }

  private requireEnabled(): string {
    if (!this.secret) throw Errors.unknown('Shared secret registration is not enabled', 400);
    return this.secret;
  }

  async newNonce(): Promise<string> {
    this.requireEnabled();
    const nonce = randomBytes(32).toString('hex');
    await this.store.addNonce(nonce);
    return nonce;
  }

  /**
   * Consumes the nonce and checks the MAC; throws 400 for an unknown or
   * expired nonce and 403 for a wrong MAC.
   */
  async verify(req: { nonce: string; user: string; password: string; admin: boolean; userType?: string; mac: string }): Promise<void> {
    const secret = this.requireEnabled();
    if (!(await this.store.takeNonce(req.nonce, NONCE_LIFETIME_MS))) throw Errors.unknown('unrecognised nonce', 400);
    const want = sharedSecretMac(secret, req.nonce, req.user, req.password, req.admin, req.userType);
    if (!constantTimeEqual(want, req.mac.toLowerCase())) throw Errors.forbidden('HMAC incorrect');
  }
}
