/** PUT /rooms/{roomId}/typing/{userId} (client-server API "Typing Notifications"). */
import type { Services } from '../../app/services.js';
import { MAX_TYPING_TIMEOUT_MS, DEFAULT_TYPING_TIMEOUT_MS } from '../../services/typing/typing-service.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { optionalInteger } from '../validate.js';

export function typingRoutes(r: Router, s: Services): void {
  r.put(
    clientPaths('/rooms/:roomId/typing/:userId'),
    async (req) => {
      const { roomId, userId } = req.params as { roomId: string; userId: string };
      const me = req.requester.userId;
      const body = req.json();
      if (typeof body.typing !== 'boolean') throw body.typing === undefined ? Errors.missingParam('typing') : Errors.badJson("'typing' must be a boolean");
      const timeout = optionalInteger(body, 'timeout');
      if (timeout !== undefined && timeout < 0) throw Errors.badJson("'timeout' must not be negative");
      if (userId !== me) throw Errors.forbidden('You may only set your own typing state');
      if ((await s.syncStore.membership(roomId, me)) !== 'join') throw Errors.forbidden(`User ${me} is not in room ${roomId}`);
      await s.typing.setTyping(roomId, me, body.typing, Math.min(timeout ?? DEFAULT_TYPING_TIMEOUT_MS, MAX_TYPING_TIMEOUT_MS));
      return {};
    },
    { auth: 'required', allowGuest: true },
  );
}
