/** GET /profile/{userId}, GET/PUT displayname and avatar_url. */
import type { Services } from '../../app/services.js';
import { parseHistoricalUserId } from '../../matrix/identifiers.js';
import { Errors } from '../../util/errors.js';
import { requireString } from '../validate.js';
import { clientPaths, type MatrixRequest, type Router } from '../types.js';

export function profileRoutes(r: Router, s: Services): void {
  const load = async (req: MatrixRequest) => {
    const userId = req.params.userId!;
    if (!parseHistoricalUserId(userId)) throw Errors.invalidParam('Invalid user id');
    const profile = await s.profiles.getProfile(userId);
    if (!profile) throw Errors.notFound('Profile was not found');
    return profile;
  };

  r.get(clientPaths('/profile/:userId'), load, { auth: 'optional', allowGuest: true });

  for (const field of ['displayname', 'avatar_url'] as const) {
    r.get(
      clientPaths(`/profile/:userId/${field}`),
      async (req) => {
        const profile = await load(req);
        // The spec answers an unset field with 404 ("no profile field with this
        // key for this user"); 200 is an object holding exactly that field.
        if (profile[field] === undefined || profile[field] === null) throw Errors.notFound(`User has no ${field}`);
        return { [field]: profile[field] };
      },
      { auth: 'optional', allowGuest: true },
    );

    r.put(
      clientPaths(`/profile/:userId/${field}`),
      async (req) => {
        const userId = req.params.userId!;
        if (req.requester.userId !== userId) throw Errors.forbidden("You cannot set another user's profile");
        const value = requireString(req.json(), field);
        if (field === 'displayname') await s.profiles.setDisplayname(userId, value);
        else await s.profiles.setAvatarUrl(userId, value);
        return {};
      },
      { auth: 'required', allowGuest: true },
    );
  }
}
