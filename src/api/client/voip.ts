/** GET /voip/turnServer (client-server API "Voice over IP"). */
import type { Services } from '../../app/services.js';
import { turnCredentials } from '../../services/voip/turn-service.js';
import { clientPaths, type Router } from '../types.js';

export function voipRoutes(r: Router, s: Services): void {
  r.get(clientPaths('/voip/turnServer'), (req) => {
    const c = s.config;
    return turnCredentials(
      {
        turn_uris: c.turn_uris ?? [],
        turn_shared_secret: c.turn_shared_secret,
        turn_username: c.turn_username,
        turn_password: c.turn_password,
        turn_user_lifetime: c.turn_user_lifetime ?? 3_600_000,
        turn_allow_guests: c.turn_allow_guests ?? true,
      },
      req.requester.userId,
      req.requester.isGuest,
    );
  }, { auth: 'required', allowGuest: true });
}
