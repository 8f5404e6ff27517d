/** GET/PUT /presence/{userId}/status. */
import type { Services } from '../../app/services.js';
import type { PresenceState } from '../../streams/sync-sources.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { optionalString, requireString } from '../validate.js';
import { live, requireSelf, authed } from './live-common.js';

const STATES = new Set(['online', 'offline', 'unavailable']);

export function presenceRoutes(router: Router, s: Services): void {
  const r = authed(router);
  r.put(clientPaths('/presence/:userId/status'), async (req) => {
    const userId = req.params.userId!;
    requireSelf(req.requester.userId, userId, 'set presence');
    const body = req.json();
    const state = requireString(body, 'presence');
    if (!STATES.has(state)) throw Errors.invalidParam(`Invalid presence state: ${state}`);
    const statusMsg = optionalString(body, 'status_msg');
    await live(s).presence.setPresence(userId, state as PresenceState, statusMsg);
    return {};
  }, { auth: 'required', allowGuest: true });

  r.get(clientPaths('/presence/:userId/status'), async (req) => {
    const userId = req.params.userId!;
    if (!userId.startsWith('@') || !userId.includes(':')) throw Errors.invalidParam(`Invalid user ID: ${userId}`);
    return live(s).presence.getPresence(req.requester.userId, userId);
  }, { auth: 'required', allowGuest: true });
}
