/**
 * Client registration: POST /register with user-interactive auth
 * (m.login.dummy when open, m.login.registration_token when a token is
 * required), guest registration, GET /register/available and the
 * registration-token validity check.
 */
import type { Services } from '../../app/services.js';
import { Errors, MatrixError } from '../../util/errors.js';
import { optionalBoolean, optionalObject, optionalString } from '../validate.js';
import { clientPaths, clientV1Paths, type Router } from '../types.js';

function registrationFlows(s: Services): string[][] {
  return s.config.registration_requires_token ? [['m.login.registration_token']] : [['m.login.dummy']];
}

/** Synapse refuses to open registration without some verification unless told it may. */
function registrationOpen(s: Services): boolean {
  const c = s.config;
  return c.enable_registration && (c.enable_registration_without_verification || c.registration_requires_token);
}

export function registerRoutes(r: Router, s: Services): void {
  r.get(clientPaths('/register'), () => {
    if (!registrationOpen(s)) throw Errors.forbidden('Registration has been disabled');
    return { flows: registrationFlows(s).map((stages) => ({ stages })), params: {} };
  });

  r.post(clientPaths('/register'), async (req) => {
    const kind = req.query.kind ?? 'user';
    if (kind !== 'user' && kind !== 'guest') throw Errors.invalidParam("kind must be 'user' or 'guest'");
    const body = req.jsonOrEmpty();
    const deviceId = optionalString(body, 'device_id');
    const displayName = optionalString(body, 'initial_device_display_name');
    const inhibitLogin = optionalBoolean(body, 'inhibit_login') ?? false;
    const refreshable = optionalBoolean(body, 'refresh_token') ?? false;
    let username = optionalString(body, 'username');
    const password = optionalString(body, 'password');
    optionalObject(body, 'auth');
    if (deviceId !== undefined && (deviceId.length === 0 || deviceId.length > 255)) throw Errors.invalidParam('device_id must be 1-255 characters');

    if (kind === 'guest') {
      if (!s.config.allow_guest_access) throw Errors.guestAccessForbidden();
      s.accountRatelimits.registration.take(req.ip);
      const userId = await s.accounts.register({ guest: true });
      const session = await s.accounts.issueSession(userId, { deviceId, deviceDisplayName: displayName, refreshable });
      return { ...session, home_server: s.serverName };
    }

    if (!registrationOpen(s)) throw Errors.forbidden('Registration has been disabled');
    s.accountRatelimits.registration.assertCanDo(req.ip);
    if (password !== undefined && password.length > 512) throw Errors.invalidParam('Password too long');
    // Localparts are lower case; clients may type capitals.
    if (username !== undefined) {
      username = username.toLowerCase();
      await s.accounts.checkUsernameAvailable(username);
    }

    const uia = await s.uia.check({
      auth: body.auth,
      flows: registrationFlows(s),
      uri: req.path,
      method: req.method,
      // The password is never stored with the session: clients resend the body.
      clientdict: username !== undefined ? { username } : {},
    });
    username ??= typeof uia.clientdict.username === 'string' ? uia.clientdict.username : undefined;
    if (password === undefined) throw Errors.missingParam('password');

    s.accountRatelimits.registration.take(req.ip);
    const regToken = uia.results['m.login.registration_token'];
    if (typeof regToken === 'string' && !(await s.registrationTokens.use(regToken))) {
      throw new MatrixError(401, 'M_FORBIDDEN', 'Registration token is no longer valid');
    }
    const userId = await s.accounts.register({ localpart: username, password });
    await s.uia.finish(uia.sessionId);
    if (inhibitLogin) return { user_id: userId, home_server: s.serverName };
    const session = await s.accounts.issueSession(userId, { deviceId, deviceDisplayName: displayName, refreshable });
    return { ...session, home_server: s.serverName };
  });

  r.get(clientPaths('/register/available'), async (req) => {
    const username = req.query.username;
    if (username === undefined) throw Errors.missingParam('username');
    await s.accounts.checkUsernameAvailable(username.toLowerCase());
    return { available: true };
  });

  r.get(clientV1Paths('/register/m.login.registration_token/validity'), async (req) => {
    const token = req.query.token;
    if (token === undefined) throw Errors.missingParam('token');
    if (!s.config.enable_registration) throw Errors.forbidden('Registration has been disabled');
    s.accountRatelimits.registration.assertCanDo(req.ip);
    return { valid: await s.registrationTokens.isValid(token) };
  });
}
