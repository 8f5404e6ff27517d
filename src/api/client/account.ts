/** /account/*: whoami, password change, deactivation, third-party ids. */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { optionalBoolean, optionalString, requireString } from '../validate.js';
import { clientPaths, type Router } from '../types.js';

export function accountRoutes(r: Router, s: Services): void {
  r.get(
    clientPaths('/account/whoami'),
    (req) => {
      const me = req.requester;
      return { user_id: me.userId, ...(me.deviceId ? { device_id: me.deviceId } : {}), is_guest: me.isGuest };
    },
    { auth: 'required', allowGuest: true },
  );

  r.post(
    clientPaths('/account/password'),
    async (req) => {
      const me = req.requester;
      const body = req.json();
      const newPassword = requireString(body, 'new_password');
      if (newPassword.length > 512) throw Errors.invalidParam('Password too long');
      const logoutDevices = optionalBoolean(body, 'logout_devices') ?? true;
      const uia = await s.uia.check({
        auth: body.auth,
        flows: [['m.login.password']],
        uri: req.path,
        method: req.method,
        requesterUserId: me.userId,
      });
      await s.accounts.changePassword(me.userId, newPassword, { logoutDevices, keep: me });
      await s.uia.finish(uia.sessionId);
      return {};
    },
    { auth: 'required' },
  );

  r.post(
    clientPaths('/account/deactivate'),
    async (req) => {
      const me = req.maybeRequester;
      if (me?.isGuest) throw Errors.guestAccessForbidden();
      const body = req.json();
      optionalString(body, 'id_server');
      optionalBoolean(body, 'erase');
      const uia = await s.uia.check({
        auth: body.auth,
        flows: [['m.login.password']],
        uri: req.path,
        method: req.method,
        requesterUserId: me?.userId,
      });
      const userId = me?.userId ?? (uia.results['m.login.password'] as string);
      await s.accounts.deactivate(userId);
      await s.uia.finish(uia.sessionId);
      return { id_server_unbind_result: 'no-support' };
    },
    { auth: 'optional' },
  );

  r.get(clientPaths('/account/3pid'), () => ({ threepids: [] }), { auth: 'required' });
}
