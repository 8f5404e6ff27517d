/**
 * Relations and threads (client-server API "Relationships", "Threading"):
 * GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]] and
 * GET /v1/rooms/{roomId}/threads. Also lists every rooms-extra route module
 * (registered with one line in api/routes.ts).
 */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientV1Paths, type MatrixRequest, type Router } from '../types.js';
import { queryBool, queryInt } from '../validate.js';
import { hierarchyRoutes } from './hierarchy.js';
import { reportRoutes } from './report.js';
import { actorOf } from './rooms.js';
import { searchRoutes } from './search.js';
import { summaryRoutes } from './summary.js';
import { upgradeRoutes } from './upgrade.js';
import { userDirectoryRoutes } from './user-directory.js';
import { voipRoutes } from './voip.js';

const GUEST = { auth: 'required' as const, allowGuest: true };

function dirParam(v: string | undefined): 'b' | 'f' {
  if (v === undefined || v === '') return 'b';
  if (v !== 'b' && v !== 'f') throw Errors.invalidParam("'dir' must be 'b' or 'f'");
  return v;
}

export function relationsRoutes(r: Router, s: Services): void {
  const relations = (req: MatrixRequest) =>
    s.relations.relations(actorOf(req), req.params.roomId!, req.params.eventId!, {
      ...(req.params.relType ? { relType: req.params.relType } : {}),
      ...(req.params.eventType ? { eventType: req.params.eventType } : {}),
      ...(req.query.from ? { from: req.query.from } : {}),
      ...(req.query.to ? { to: req.query.to } : {}),
      dir: dirParam(req.query.dir),
      limit: queryInt(req.query.limit, 'limit', 50, 1),
      recurse: queryBool(req.query.recurse ?? req.query['org.matrix.msc3981.recurse'], 'recurse', false),
    });
  r.get(clientV1Paths('/rooms/:roomId/relations/:eventId'), relations, GUEST);
  r.get(clientV1Paths('/rooms/:roomId/relations/:eventId/:relType'), relations, GUEST);
  r.get(clientV1Paths('/rooms/:roomId/relations/:eventId/:relType/:eventType'), relations, GUEST);

  r.get(clientV1Paths('/rooms/:roomId/threads'), (req) => {
    const include = req.query.include ?? 'all';
    if (include !== 'all' && include !== 'participated') throw Errors.invalidParam("'include' must be 'all' or 'participated'");
    return s.relations.threads(actorOf(req), req.params.roomId!, {
      include,
      ...(req.query.from ? { from: req.query.from } : {}),
      limit: queryInt(req.query.limit, 'limit', 50, 1),
    });
  }, GUEST);
}

/** Every route module of the rooms-extra capability. */
export const roomsExtraRoutes = [
  relationsRoutes,
  upgradeRoutes,
  hierarchyRoutes,
  summaryRoutes,
  searchRoutes,
  userDirectoryRoutes,
  voipRoutes,
  reportRoutes,
];
