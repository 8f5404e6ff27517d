/** /versions, /.well-known/matrix/*, /capabilities: what clients ask first. */
import { roomVersionsCapability } from '../../matrix/room-versions.js';
import type { Services } from '../../app/services.js';
import { clientPaths, respond, type Router } from '../types.js';

/** The client-server spec versions whose endpoints we serve. */
export const SUPPORTED_VERSIONS = ['r0.5.0', 'r0.6.0', 'r0.6.1', 'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6'];

export function versionsRoutes(r: Router, s: Services): void {
  r.get('/_matrix/client/versions', () => ({
    versions: SUPPORTED_VERSIONS,
    unstable_features: {},
  }));

  r.get('/.well-known/matrix/client', () => {
    if (!s.config.public_baseurl) return respond(404, { errcode: 'M_NOT_FOUND', error: 'No public_baseurl configured' });
    return { 'm.homeserver': { base_url: s.config.public_baseurl.replace(/\/+$/, '') } };
  });

  r.get(
    clientPaths('/capabilities'),
    () => ({
      capabilities: {
        'm.room_versions': roomVersionsCapability(s.config.default_room_version),
        'm.change_password': { enabled: true },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: false },
      },
    }),
    { auth: 'required', allowGuest: true },
  );
}
