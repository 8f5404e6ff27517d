/** POST /user/{userId}/filter, GET /user/{userId}/filter/{filterId}. */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';

export function filterRoutes(r: Router, s: Services): void {
  r.post(
    clientPaths('/user/:userId/filter'),
    async (req) => {
      if (req.params.userId !== req.requester.userId) throw Errors.forbidden('Cannot create filters for other users');
      return { filter_id: await s.filters.create(req.requester.userId, req.json()) };
    },
    { auth: 'required', allowGuest: true },
  );

  r.get(
    clientPaths('/user/:userId/filter/:filterId'),
    async (req) => {
      if (req.params.userId !== req.requester.userId) throw Errors.forbidden('Cannot get filters for other users');
      const f = await s.filters.get(req.requester.userId, req.params.filterId!);
      if (!f) throw Errors.notFound('No such filter');
      return f;
    },
    { auth: 'required', allowGuest: true },
  );
}
