/** GET /notifications. */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { queryInt } from '../validate.js';
import { live, authed } from './live-common.js';

export function notificationsRoutes(router: Router, s: Services): void {
  const r = authed(router);
  r.get(clientPaths('/notifications'), async (req) => {
    const from = req.query.from;
    if (from !== undefined && !/^\d+$/.test(from)) throw Errors.invalidParam("'from' is not a valid token");
    const limit = queryInt(req.query.limit, 'limit', 20, 1, 100);
    const only = req.query.only;
    // Only `highlight` is defined; other values do not filter.
    return live(s).push.getNotifications(req.requester.userId, from === undefined ? undefined : Number(from), limit, only === 'highlight');
  });
}
