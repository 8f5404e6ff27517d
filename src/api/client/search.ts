/** POST /search (client-server API "Server Side Search"); only the room_events category exists. */
import type { Services } from '../../app/services.js';
import { parseRoomEventsCriteria } from '../../services/search/search-service.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { actorOf } from './rooms.js';

export function searchRoutes(r: Router, s: Services): void {
  r.post(clientPaths('/search'), async (req) => {
    const body = req.json();
    const cats = body.search_categories;
    if (cats === undefined || cats === null) throw Errors.missingParam('search_categories');
    if (typeof cats !== 'object' || Array.isArray(cats)) throw Errors.badJson("'search_categories' must be an object");
    if (cats.room_events === undefined || cats.room_events === null) return { search_categories: {} };
    const criteria = parseRoomEventsCriteria(cats.room_events);
    return s.search.searchRoomEvents(actorOf(req), criteria, req.query.next_batch);
  }, { auth: 'required' });
}
