/**
 * Reporting content: POST /rooms/{roomId}/report/{eventId} (reason, score),
 * POST /rooms/{roomId}/report (spec v1.13, reason required) and
 * POST /users/{userId}/report (spec v1.14, reason required, may be blank).
 */
import type { Services } from '../../app/services.js';
import { clientPaths, type Router } from '../types.js';
import { optionalInteger, optionalString, requireString } from '../validate.js';

export function reportRoutes(r: Router, s: Services): void {
  r.post(clientPaths('/rooms/:roomId/report/:eventId'), async (req) => {
    const body = req.jsonOrEmpty();
    await s.reports.reportEvent(req.requester.userId, req.params.roomId!, req.params.eventId!, optionalString(body, 'reason'), optionalInteger(body, 'score'));
    return {};
  }, { auth: 'required' });

  r.post(clientPaths('/rooms/:roomId/report', ['v3']), async (req) => {
    const reason = requireString(req.json(), 'reason');
    await s.reports.reportRoom(req.requester.userId, req.params.roomId!, reason);
    return {};
  }, { auth: 'required' });

  r.post(clientPaths('/users/:userId/report', ['v3']), async (req) => {
    const reason = requireString(req.json(), 'reason');
    await s.reports.reportUser(req.requester.userId, req.params.userId!, reason);
    return {};
  }, { auth: 'required' });
}
