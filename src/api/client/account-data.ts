/** Account data (global and per room) and room tags. */
import type { Services } from '../../app/services.js';
import { Errors, MatrixError } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { live, requireRoomId, requireSelf, authed } from './live-common.js';

/** Types the server manages; clients may read but not set them here. */
const SERVER_MANAGED_GLOBAL = new Set(['m.push_rules']);
const SERVER_MANAGED_ROOM = new Set(['m.fully_read', 'm.push_rules']);

function serverManaged(type: string): never {
  // Spec: 405 with M_BAD_JSON for account data the server controls.
  throw new MatrixError(405, 'M_BAD_JSON', `Cannot set ${type} through this API`);
}

export function accountDataRoutes(router: Router, s: Services): void {
  const r = authed(router);
  r.put(clientPaths('/user/:userId/account_data/:type'), async (req) => {
    const { userId, type } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'add account data');
    const content = req.json();
    if (SERVER_MANAGED_GLOBAL.has(type)) serverManaged(type);
    if (type === 'm.ignored_user_list') {
      const list = content.ignored_users;
      if (!list || typeof list !== 'object' || Array.isArray(list)) throw Errors.badJson("'ignored_users' must be an object");
    }
    await live(s).accountData.put(userId, undefined, type, content);
    return {};
  });

  r.get(clientPaths('/user/:userId/account_data/:type'), async (req) => {
    const { userId, type } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'get account data');
    const content = await live(s).accountData.get(userId, undefined, type);
    if (!content) throw Errors.notFound('Account data not found');
    return content;
  });

  r.put(clientPaths('/user/:userId/rooms/:roomId/account_data/:type'), async (req) => {
    const { userId, roomId, type } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'add account data');
    requireRoomId(roomId);
    const content = req.json();
    if (SERVER_MANAGED_ROOM.has(type)) serverManaged(type);
    if (type === 'm.tag') throw Errors.badJson('Use the /tags API to change room tags');
    await live(s).accountData.put(userId, roomId, type, content);
    return {};
  });

  r.get(clientPaths('/user/:userId/rooms/:roomId/account_data/:type'), async (req) => {
    const { userId, roomId, type } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'get account data');
    requireRoomId(roomId);
    const content = await live(s).accountData.get(userId, roomId, type);
    if (!content) throw Errors.notFound('Account data not found');
    return content;
  });

  // Tags.
  r.get(clientPaths('/user/:userId/rooms/:roomId/tags'), async (req) => {
    const { userId, roomId } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'get tags');
    requireRoomId(roomId);
    return { tags: await live(s).accountData.getTags(userId, roomId) };
  });

  r.put(clientPaths('/user/:userId/rooms/:roomId/tags/:tag'), async (req) => {
    const { userId, roomId, tag } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'add tags');
    requireRoomId(roomId);
    const body = req.json();
    if (body.order !== undefined && (typeof body.order !== 'number' || !Number.isFinite(body.order) || body.order < 0 || body.order > 1)) {
      throw Errors.badJson("'order' must be a number between 0 and 1");
    }
    if (tag.length > 255) throw Errors.invalidParam('Tag too long');
    await live(s).accountData.putTag(userId, roomId, tag, body);
    return {};
  });

  r.delete(clientPaths('/user/:userId/rooms/:roomId/tags/:tag'), async (req) => {
    const { userId, roomId, tag } = req.params as Record<string, string>;
    requireSelf(req.requester.userId, userId, 'remove tags');
    requireRoomId(roomId);
    await live(s).accountData.deleteTag(userId, roomId, tag);
    return {};
  });
}
