/** Receipts and read markers. */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { optionalString } from '../validate.js';
import { live, requireRoomId, authed } from './live-common.js';

export function receiptsRoutes(router: Router, s: Services): void {
  const r = authed(router);
  r.post(clientPaths('/rooms/:roomId/receipt/:receiptType/:eventId'), async (req) => {
    const { roomId, receiptType, eventId } = req.params as Record<string, string>;
    requireRoomId(roomId);
    const body = req.jsonOrEmpty();
    await live(s).receipts.postReceipt(req.requester.userId, roomId, receiptType, eventId, body.thread_id ?? undefined);
    return {};
  });

  r.post(clientPaths('/rooms/:roomId/read_markers'), async (req) => {
    const roomId = req.params.roomId!;
    requireRoomId(roomId);
    const body = req.json();
    const markers = {
      fullyRead: optionalString(body, 'm.fully_read'),
      read: optionalString(body, 'm.read'),
      readPrivate: optionalString(body, 'm.read.private'),
    };
    for (const id of Object.values(markers)) if (id !== undefined && !id.startsWith('$')) throw Errors.invalidParam(`Invalid event ID: ${id}`);
    await live(s).receipts.setReadMarkers(req.requester.userId, roomId, markers);
    return {};
  });
}
