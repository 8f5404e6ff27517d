/**
 * /keys/device_signing/upload and /keys/signatures/upload (cross-signing).
 * Uploading cross-signing keys needs user-interactive auth unless the user
 * has no master key yet or the request repeats the stored keys.
 */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';

export function crossSigningRoutes(r: Router, s: Services): void {
  r.post(
    clientPaths('/keys/device_signing/upload', ['unstable', 'v3']),
    async (req) => {
      const userId = req.requester.userId;
      const { auth, ...rest } = req.json();
      let body: Record<string, any> = rest;
      let prepared = await s.e2eeKeys.prepareCrossSigningUpload(userId, body);
      let session: string | undefined;
      if (prepared.needsAuth) {
        const uia = await s.uia.check({ auth, flows: [['m.login.password']], uri: req.path, method: req.method, clientdict: body, requesterUserId: userId });
        session = uia.sessionId;
        // A client may send the keys only with the first request of the session.
        if (!['master_key', 'self_signing_key', 'user_signing_key'].some((k) => body[k] != null)) {
          body = uia.clientdict;
          prepared = await s.e2eeKeys.prepareCrossSigningUpload(userId, body);
        }
      }
      await s.e2eeKeys.storeCrossSigningKeys(userId, prepared.keys);
      if (session) await s.uia.finish(session);
      return {};
    },
    { auth: 'required' },
  );

  r.post(
    clientPaths('/keys/signatures/upload', ['unstable', 'v3']),
    async (req) => {
      const body = req.json();
      for (const u of Object.keys(body)) if (!u.startsWith('@')) throw Errors.invalidParam(`not a user id: ${u}`);
      return s.e2eeKeys.uploadSignatures(req.requester.userId, body);
    },
    { auth: 'required' },
  );
}
