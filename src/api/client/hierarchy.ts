/** GET /v1/rooms/{roomId}/hierarchy (client-server API "Spaces"). */
import type { Services } from '../../app/services.js';
import { clientV1Paths, type Router } from '../types.js';
import { queryBool, queryInt } from '../validate.js';

export function hierarchyRoutes(r: Router, s: Services): void {
  r.get(clientV1Paths('/rooms/:roomId/hierarchy'), (req) => {
    const limit = req.query.limit !== undefined ? queryInt(req.query.limit, 'limit', 50, 1) : undefined;
    const maxDepth = req.query.max_depth !== undefined ? queryInt(req.query.max_depth, 'max_depth', 50, 0) : undefined;
    return s.spaceHierarchy.hierarchy(req.requester.userId, req.params.roomId!, {
      suggestedOnly: queryBool(req.query.suggested_only, 'suggested_only', false),
      ...(limit !== undefined ? { limit } : {}),
      ...(maxDepth !== undefined ? { maxDepth } : {}),
      ...(req.query.from !== undefined ? { from: req.query.from } : {}),
    });
  }, { auth: 'required', allowGuest: true });
}
