/**
 * Room aliases (/directory/room/{alias}, /rooms/{id}/aliases) and the public
 * room directory (/directory/list/room/{id}, /publicRooms).
 */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { optionalInteger, optionalObject, optionalString, requireString } from '../validate.js';
import { actorOf } from './rooms.js';

const AUTH = { auth: 'required' as const };

export function directoryRoutes(r: Router, s: Services): void {
  r.put(clientPaths('/directory/room/:roomAlias'), async (req) => {
    const roomId = requireString(req.json(), 'room_id');
    await s.roomDirectory.createAlias(actorOf(req), req.params.roomAlias!, roomId);
    return {};
  }, AUTH);

  r.get(clientPaths('/directory/room/:roomAlias'), (req) => s.roomDirectory.resolveAlias(req.params.roomAlias!), { auth: 'optional' });

  r.delete(clientPaths('/directory/room/:roomAlias'), async (req) => {
    await s.roomDirectory.deleteAlias(actorOf(req), req.params.roomAlias!);
    return {};
  }, AUTH);

  r.get(clientPaths('/rooms/:roomId/aliases'), async (req) => ({
    aliases: await s.roomDirectory.roomAliases(actorOf(req), req.params.roomId!),
  }), AUTH);

  r.get(clientPaths('/directory/list/room/:roomId'), async (req) => ({
    visibility: await s.roomDirectory.getVisibility(req.params.roomId!),
  }), { auth: 'optional' });

  r.put(clientPaths('/directory/list/room/:roomId'), async (req) => {
    const v = optionalString(req.json(), 'visibility') ?? 'public';
    if (v !== 'public' && v !== 'private') throw Errors.invalidParam("'visibility' must be 'public' or 'private'");
    await s.roomDirectory.setVisibility(actorOf(req), req.params.roomId!, v);
    return {};
  }, AUTH);

  const checkServer = (server: string | undefined) => {
    if (server !== undefined && server !== '' && server !== s.serverName) {
      throw Errors.invalidParam('Querying other servers\' directories is not supported');
    }
  };

  r.get(clientPaths('/publicRooms'), (req) => {
    checkServer(req.query.server);
    const limit = req.query.limit !== undefined ? Number.parseInt(req.query.limit, 10) : undefined;
    if (limit !== undefined && (!Number.isFinite(limit) || limit < 0)) throw Errors.invalidParam("'limit' must be a non-negative integer");
    return s.roomDirectory.publicRooms({
      ...(limit !== undefined ? { limit } : {}),
      ...(req.query.since ? { since: req.query.since } : {}),
    });
  }, { auth: 'optional' });

  r.post(clientPaths('/publicRooms'), (req) => {
    checkServer(req.query.server);
    const body = req.jsonOrEmpty();
    const limit = optionalInteger(body, 'limit');
    const since = optionalString(body, 'since');
    const filter = optionalObject(body, 'filter');
    const term = filter ? optionalString(filter, 'generic_search_term') : undefined;
    return s.roomDirectory.publicRooms({
      ...(limit !== undefined ? { limit } : {}),
      ...(since ? { since } : {}),
      ...(term ? { searchTerm: term } : {}),
    });
  }, AUTH);
}
