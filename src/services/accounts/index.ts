/** The accounts capability's public surface, for other capabilities and assembly. */
export { AccountService, type SessionTokens, type AccountSettings } from './account-service.js';
export { DeviceService, deviceToClient, type Device } from './device-service.js';
export { ProfileService, type Profile } from './profile-service.js';
export { FilterService } from './filter-service.js';
export { UiaService, UiaRequired } from './uia.js';
export { RegistrationTokenService } from './registration-tokens.js';
export { SharedSecretRegistration } from './shared-secret.js';
export { TokenAuthenticator } from './authenticator.js';
export { AccountsStore } from './store.js';
export { PasswordHasher } from './passwords.js';
import type { Ratelimiter } from '../ratelimit.js';

/** The rc_login / rc_registration limiters. */
export interface AccountRatelimiters {
  /** rc_login.address, keyed by client IP. */
  loginAddress: Ratelimiter;
  /** rc_login.account, keyed by user id. */
  loginAccount: Ratelimiter;
  /** rc_login.failed_attempts, keyed by user id. */
  loginFailed: Ratelimiter;
  /** rc_registration, keyed by client IP. */
  registration: Ratelimiter;
  /** rc_message (sending events and redactions), keyed by user id; admins are exempt. */
  message: Ratelimiter;
}
