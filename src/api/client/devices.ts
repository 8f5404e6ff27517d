/** GET/PUT/DELETE /devices, POST /delete_devices. Deleting needs user-interactive auth. */
import type { Services } from '../../app/services.js';
import { deviceToClient } from '../../services/accounts/device-service.js';
import { Errors } from '../../util/errors.js';
import { optionalString } from '../validate.js';
import { clientPaths, type Router } from '../types.js';

export function deviceRoutes(r: Router, s: Services): void {
  r.get(
    clientPaths('/devices'),
    async (req) => ({ devices: (await s.devices.listDevices(req.requester.userId)).map(deviceToClient) }),
    { auth: 'required' },
  );

  r.get(
    clientPaths('/devices/:deviceId'),
    async (req) => {
      const d = await s.devices.getDevice(req.requester.userId, req.params.deviceId!);
      if (!d) throw Errors.notFound('No such device');
      return deviceToClient(d);
    },
    { auth: 'required' },
  );

  r.put(
    clientPaths('/devices/:deviceId'),
    async (req) => {
      const body = req.json();
      const name = optionalString(body, 'display_name');
      const userId = req.requester.userId;
      const deviceId = req.params.deviceId!;
      if (!(await s.devices.getDevice(userId, deviceId))) throw Errors.notFound('No such device');
      if (name !== undefined) await s.devices.setDisplayName(userId, deviceId, name);
      return {};
    },
    { auth: 'required' },
  );

  r.delete(
    clientPaths('/devices/:deviceId'),
    async (req) => {
      const userId = req.requester.userId;
      const deviceId = req.params.deviceId!;
      const body = req.jsonOrEmpty();
      if (!(await s.devices.getDevice(userId, deviceId))) throw Errors.notFound('No such device');
      const uia = await s.uia.check({ auth: body.auth, flows: [['m.login.password']], uri: req.path, method: req.method, requesterUserId: userId });
      await s.devices.deleteDevice(userId, deviceId);
      await s.uia.finish(uia.sessionId);
      return {};
    },
    { auth: 'required' },
  );

  r.post(
    clientPaths('/delete_devices'),
    async (req) => {
      const userId = req.requester.userId;
      const body = req.json();
      const devices = body.devices;
      if (devices === undefined || devices === null) throw Errors.missingParam('devices');
      if (!Array.isArray(devices) || devices.some((d) => typeof d !== 'string')) throw Errors.badJson("'devices' must be a list of strings");
      const uia = await s.uia.check({ auth: body.auth, flows: [['m.login.password']], uri: req.path, method: req.method, requesterUserId: userId });
      await s.devices.deleteDevices(userId, devices as string[]);
      await s.uia.finish(uia.sessionId);
      return {};
    },
    { auth: 'required' },
  );
}
