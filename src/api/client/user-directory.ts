/** POST /user_directory/search (client-server API "User directory"). */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { optionalInteger, requireString } from '../validate.js';

export function userDirectoryRoutes(r: Router, s: Services): void {
  r.post(clientPaths('/user_directory/search'), (req) => {
    const body = req.json();
    const term = requireString(body, 'search_term');
    const limit = optionalInteger(body, 'limit') ?? 10;
    if (limit < 0) throw Errors.invalidParam("'limit' must not be negative");
    return s.userDirectory.search(req.requester.userId, term, limit);
  }, { auth: 'required' });
}
