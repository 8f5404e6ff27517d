/** PUT /sendToDevice/{eventType}/{txnId}. */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { live, authed } from './live-common.js';

export function toDeviceRoutes(router: Router, s: Services): void {
  const r = authed(router);
  r.put(clientPaths('/sendToDevice/:eventType/:txnId'), async (req) => {
    const { eventType, txnId } = req.params as Record<string, string>;
    const body = req.json();
    const messages = body.messages;
    if (messages === undefined) throw Errors.missingParam('messages');
    if (!messages || typeof messages !== 'object' || Array.isArray(messages)) throw Errors.badJson("'messages' must be an object");
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (!userId.startsWith('@') || !userId.includes(':')) throw Errors.invalidParam(`Invalid user ID: ${userId}`);
      if (!byDevice || typeof byDevice !== 'object' || Array.isArray(byDevice)) throw Errors.badJson(`messages.${userId} must be an object`);
      for (const [deviceId, content] of Object.entries(byDevice as Record<string, unknown>)) {
        if (!content || typeof content !== 'object' || Array.isArray(content)) throw Errors.badJson(`messages.${userId}.${deviceId} must be an object`);
      }
    }
    const device = req.requester.deviceId ?? '';
    await live(s).toDevice.send(req.requester.userId, device, eventType, txnId, messages);
    return {};
  });
}
