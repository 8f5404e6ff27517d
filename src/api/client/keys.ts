/**
 * /keys/upload, /keys/query, /keys/claim and /keys/changes (client-server
 * API, end-to-end encryption module). Thin: validation and logic live in the
 * e2ee KeysService.
 */
import type { Services } from '../../app/services.js';
import { decodeSyncToken } from '../../streams/tokens.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';

export function keysRoutes(r: Router, s: Services): void {
  // `/keys/upload/{deviceId}` is the deprecated r0 form; the device is always the requester's.
  r.post(
    [...clientPaths('/keys/upload'), ...clientPaths('/keys/upload/:deviceId')],
    async (req) => {
      const { userId, deviceId } = req.requester;
      if (!deviceId) throw Errors.invalidParam('This access token has no device');
      if (req.params.deviceId !== undefined && req.params.deviceId !== deviceId) throw Errors.invalidParam('Device id does not match the access token');
      return s.e2eeKeys.upload(userId, deviceId, req.json());
    },
    { auth: 'required', allowGuest: true },
  );

  r.post(
    clientPaths('/keys/query'),
    async (req) => {
      const body = req.json();
      if (body.device_keys === undefined) throw Errors.missingParam('device_keys');
      return s.e2eeKeys.query(req.requester.userId, body.device_keys);
    },
    { auth: 'required', allowGuest: true },
  );

  r.post(
    clientPaths('/keys/claim'),
    async (req) => {
      const body = req.json();
      if (body.one_time_keys === undefined) throw Errors.missingParam('one_time_keys');
      return s.e2eeKeys.claim(body.one_time_keys);
    },
    { auth: 'required', allowGuest: true },
  );

  r.get(
    clientPaths('/keys/changes'),
    async (req) => {
      if (!req.query.from) throw Errors.missingParam('from');
      const from = decodeSyncToken(req.query.from);
      // `to` is a hint; without it, read up to now.
      const to = req.query.to ? decodeSyncToken(req.query.to) : undefined;
      return s.e2eeKeys.getDeviceListChanges(req.requester.userId, from.device_lists, to?.device_lists ?? s.streams.device_lists?.getCurrent() ?? 0);
    },
    { auth: 'required', allowGuest: true },
  );
}
