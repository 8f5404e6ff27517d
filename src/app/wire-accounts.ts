/**
 * Builds the accounts capability: store, token authenticator, accounts,
 * devices, profiles, filters, user-interactive auth, registration tokens,
 * shared-secret registration and the login/registration rate limiters.
 */
import { AccountService } from '../services/accounts/account-service.js';
import { TokenAuthenticator } from '../services/accounts/authenticator.js';
import { DeviceService } from '../services/accounts/device-service.js';
import { FilterService } from '../services/accounts/filter-service.js';
import { passwordFromBody, userFromLoginBody } from '../services/accounts/login-identifier.js';
import { PasswordHasher } from '../services/accounts/passwords.js';
import { ProfileService } from '../services/accounts/profile-service.js';
import { RegistrationTokenService } from '../services/accounts/registration-tokens.js';
import { SharedSecretRegistration } from '../services/accounts/shared-secret.js';
import { AccountsStore } from '../services/accounts/store.js';
import { UiaService } from '../services/accounts/uia.js';
import { Ratelimiter } from '../services/ratelimit.js';
import { Errors } from '../util/errors.js';
import type { Services } from './services.js';

/** Synapse's defaults for rc_login. */
const RC_LOGIN_DEFAULT = { per_second: 0.17, burst_count: 3 };

export async function wireAccounts(services: Services): Promise<void> {
  const config = services.config;
  const store = new AccountsStore(services.db);
  const authenticator = new TokenAuthenticator(store, (e) => services.logger.warn({ err: e }, 'could not record device last-seen'));
  const devices = new DeviceService(store, authenticator);
  const hasher = new PasswordHasher(config.bcrypt_rounds, (config as any).password_config?.pepper ?? '');
  const accounts = new AccountService(store, hasher, devices, authenticator, {
    serverName: services.serverName,
    refreshableAccessTokenLifetimeMs: config.refreshable_access_token_lifetime ?? 5 * 60_000,
    refreshTokenLifetimeMs: config.refresh_token_lifetime,
    sessionLifetimeMs: config.session_lifetime,
  });
  const registrationTokens = new RegistrationTokenService(store);
  const uia = new UiaService(store);
  uia.registerStage('m.login.dummy', async () => true);
  uia.registerStage('m.login.password', async (auth, ctx) => {
    const userId = await accounts.validatePasswordLogin(userFromLoginBody(auth), passwordFromBody(auth));
    if (ctx.requesterUserId !== undefined && userId !== ctx.requesterUserId) throw Errors.forbidden('Invalid username or password');
    return userId;
  });
  uia.registerStage('m.login.registration_token', async (auth) => {
    const token = auth.token;
    if (token === undefined || token === null) throw Errors.missingParam('token');
    if (typeof token !== 'string') throw Errors.badJson("'token' must be a string");
    if (!(await registrationTokens.isValid(token))) throw Errors.forbidden('Invalid registration token');
    return token;
  });

  if (config.enable_registration && !config.enable_registration_without_verification && !config.registration_requires_token) {
    services.logger.warn(
      'enable_registration is on without verification: set enable_registration_without_verification (or registration_requires_token) to open registration; it stays closed',
    );
  }

  services.accountsStore = store;
  services.tokenAuthenticator = authenticator;
  services.authenticator = authenticator;
  services.accounts = accounts;
  services.devices = devices;
  services.profiles = new ProfileService(store);
  services.filters = new FilterService(store);
  services.uia = uia;
  services.registrationTokens = registrationTokens;
  services.sharedSecretRegistration = new SharedSecretRegistration(store, config.registration_shared_secret);
  services.accountRatelimits = {
    loginAddress: new Ratelimiter(config.rc_login.address ?? RC_LOGIN_DEFAULT),
    loginAccount: new Ratelimiter(config.rc_login.account ?? RC_LOGIN_DEFAULT),
    loginFailed: new Ratelimiter(config.rc_login.failed_attempts ?? RC_LOGIN_DEFAULT),
    registration: new Ratelimiter(config.rc_registration),
    message: new Ratelimiter(config.rc_message),
  };
}
