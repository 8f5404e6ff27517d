/** POST/GET /login, /refresh, /logout, /logout/all. */
import type { Services } from '../../app/services.js';
import { passwordFromBody, userFromLoginBody } from '../../services/accounts/login-identifier.js';
import { Errors, MatrixError } from '../../util/errors.js';
import { optionalBoolean, optionalString, requireString } from '../validate.js';
import { clientPaths, type Router } from '../types.js';

export function loginRoutes(r: Router, s: Services): void {
  r.get(clientPaths('/login'), () => ({ flows: [{ type: 'm.login.password' }] }));

  r.post(clientPaths('/login'), async (req) => {
    const limits = s.accountRatelimits;
    limits.loginAddress.take(req.ip);
    const body = req.json();
    const type = requireString(body, 'type');
    if (type !== 'm.login.password') throw new MatrixError(400, 'M_UNKNOWN', `Unknown login type: ${type}`);
    const userInput = userFromLoginBody(body);
    const password = passwordFromBody(body);
    const deviceId = optionalString(body, 'device_id');
    const displayName = optionalString(body, 'initial_device_display_name');
    const refreshable = optionalBoolean(body, 'refresh_token') ?? false;
    if (deviceId !== undefined && (deviceId.length === 0 || deviceId.length > 255)) throw Errors.invalidParam('device_id must be 1-255 characters');

    // Rate limits are per account: key them by the user id the input names.
    const key = (await s.accounts.resolveLocalUser(userInput)) ?? userInput.toLowerCase();
    limits.loginAccount.take(key);
    limits.loginFailed.assertCanDo(key);
    let userId: string;
    try {
      userId = await s.accounts.validatePasswordLogin(userInput, password);
    } catch (e) {
      if (e instanceof MatrixError && e.errcode === 'M_FORBIDDEN') limits.loginFailed.record(key);
      throw e;
    }
    const session = await s.accounts.issueSession(userId, { deviceId, deviceDisplayName: displayName, refreshable });
    return { ...session, home_server: s.serverName };
  });

  r.post(clientPaths('/refresh', ['v1', 'v3']), async (req) => {
    const token = requireString(req.json(), 'refresh_token');
    const out = await s.accounts.refresh(token);
    return { access_token: out.access_token, refresh_token: out.refresh_token, expires_in_ms: out.expires_in_ms };
  });

  r.post(
    clientPaths('/logout'),
    async (req) => {
      await s.accounts.logout(req.requester);
      return {};
    },
    { auth: 'required', allowGuest: true },
  );

  r.post(
    clientPaths('/logout/all'),
    async (req) => {
      await s.accounts.logoutAll(req.requester.userId);
      return {};
    },
    { auth: 'required', allowGuest: true },
  );
}
