/** Deprecated endpoints: GET /events, GET /initialSync, GET /rooms/{roomId}/initialSync. */
import type { Services } from '../../app/services.js';
import { clientPaths, type Router } from '../types.js';
import { queryBool, queryInt } from '../validate.js';
import { MAX_SYNC_TIMEOUT_MS } from './sync.js';

export function legacyEventsRoutes(r: Router, s: Services): void {
  r.get(
    clientPaths('/events'),
    async (req) => {
      const { userId, deviceId } = req.requester;
      const timeout = queryInt(req.query.timeout, 'timeout', 0, 0, MAX_SYNC_TIMEOUT_MS);
      return s.legacyEvents.events(userId, deviceId, req.query.from || undefined, timeout, req.signal);
    },
    { auth: 'required', allowGuest: true },
  );
  r.get(
    clientPaths('/initialSync'),
    async (req) => {
      const { userId, deviceId } = req.requester;
      const limit = queryInt(req.query.limit, 'limit', 10, 0, 1000);
      const archived = queryBool(req.query.archived, 'archived', false);
      return s.legacyEvents.initialSync(userId, deviceId, limit, archived);
    },
    { auth: 'required' },
  );
  r.get(
    clientPaths('/rooms/:roomId/initialSync'),
    async (req) => {
      const { userId, deviceId } = req.requester;
      const limit = queryInt(req.query.limit, 'limit', 10, 0, 1000);
      return s.legacyEvents.roomInitialSync(userId, deviceId, req.params.roomId!, limit);
    },
    { auth: 'required', allowGuest: true },
  );
}
