/**
 * Room summaries (MSC3266): the stable GET /_matrix/client/v1/room_summary/{roomIdOrAlias}
 * and the unstable im.nheko.summary paths clients still use. Authentication
 * is optional: anonymous callers see public/knockable/world_readable rooms.
 */
import type { Services } from '../../app/services.js';
import type { MatrixRequest, Router } from '../types.js';

const UNSTABLE = '/_matrix/client/unstable/im.nheko.summary';

export function summaryRoutes(r: Router, s: Services): void {
  const handler = (req: MatrixRequest) => s.roomSummaries.summary(req.maybeRequester?.userId, req.params.roomIdOrAlias!);
  r.get(
    [
      '/_matrix/client/v1/room_summary/:roomIdOrAlias',
      `${UNSTABLE}/rooms/:roomIdOrAlias/summary`,
      `${UNSTABLE}/summary/:roomIdOrAlias`,
    ],
    handler,
    { auth: 'optional', allowGuest: true },
  );
}
