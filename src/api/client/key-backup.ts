/**
 * Server-side key backup: /room_keys/version[/{version}] and
 * /room_keys/keys[/{roomId}[/{sessionId}]]?version=.
 */
import type { Services } from '../../app/services.js';
import { parseKeyBackupData } from '../../services/e2ee/backup-service.js';
import type { BackedUpSession } from '../../storage/e2ee/backup-store.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type MatrixRequest, type Router } from '../types.js';

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{sessions: {id: data}}` of one room. */
function roomSessions(roomId: string, body: unknown): BackedUpSession[] {
  if (!isObj(body) || !isObj(body.sessions)) throw Errors.badJson("'sessions' must be an object");
  return Object.entries(body.sessions).map(([sid, data]) => parseKeyBackupData(roomId, sid, data));
}

export function keyBackupRoutes(r: Router, s: Services): void {
  const auth = { auth: 'required' as const };
  const uid = (req: MatrixRequest) => req.requester.userId;

  r.post(clientPaths('/room_keys/version'), (req) => s.keyBackup.createVersion(uid(req), req.json()), auth);
  r.get(clientPaths('/room_keys/version'), (req) => s.keyBackup.getVersion(uid(req)), auth);
  r.get(clientPaths('/room_keys/version/:version'), (req) => s.keyBackup.getVersion(uid(req), req.params.version), auth);
  r.put(clientPaths('/room_keys/version/:version'), (req) => s.keyBackup.updateVersion(uid(req), req.params.version!, req.json()), auth);
  r.delete(clientPaths('/room_keys/version/:version'), (req) => s.keyBackup.deleteVersion(uid(req), req.params.version!), auth);

  r.put(
    clientPaths('/room_keys/keys'),
    (req) => {
      const body = req.json();
      if (!isObj(body.rooms)) throw Errors.badJson("'rooms' must be an object");
      const sessions = Object.entries(body.rooms).flatMap(([roomId, room]) => roomSessions(roomId, room));
      return s.keyBackup.putKeys(uid(req), req.query.version, sessions);
    },
    auth,
  );
  r.put(clientPaths('/room_keys/keys/:roomId'), (req) => s.keyBackup.putKeys(uid(req), req.query.version, roomSessions(req.params.roomId!, req.json())), auth);
  r.put(
    clientPaths('/room_keys/keys/:roomId/:sessionId'),
    (req) => s.keyBackup.putKeys(uid(req), req.query.version, [parseKeyBackupData(req.params.roomId!, req.params.sessionId!, req.json())]),
    auth,
  );

  r.get(clientPaths('/room_keys/keys'), (req) => s.keyBackup.getKeys(uid(req), req.query.version), auth);
  r.get(clientPaths('/room_keys/keys/:roomId'), (req) => s.keyBackup.getKeys(uid(req), req.query.version, req.params.roomId), auth);
  r.get(clientPaths('/room_keys/keys/:roomId/:sessionId'), (req) => s.keyBackup.getKeys(uid(req), req.query.version, req.params.roomId, req.params.sessionId), auth);

  r.delete(clientPaths('/room_keys/keys'), (req) => s.keyBackup.deleteKeys(uid(req), req.query.version), auth);
  r.delete(clientPaths('/room_keys/keys/:roomId'), (req) => s.keyBackup.deleteKeys(uid(req), req.query.version, req.params.roomId), auth);
  r.delete(
    clientPaths('/room_keys/keys/:roomId/:sessionId'),
    (req) => s.keyBackup.deleteKeys(uid(req), req.query.version, req.params.roomId, req.params.sessionId),
    auth,
  );
}
