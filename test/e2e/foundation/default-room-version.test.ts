/** default_room_version: advertised in capabilities and used by createRoom. */
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

describeShapes(
  'default_room_version',
  (server) => {
    it('is advertised and used when createRoom names no version', async () => {
      const u = await server().registerUser();
      const c = new RawClient(server().baseUrl, u.accessToken);
      const caps = await c.get('/_matrix/client/v3/capabilities');
      expect(caps.body.capabilities['m.room_versions'].default).toBe('9');
      const room = await c.post('/_matrix/client/v3/createRoom', {});
      const create = await c.get(`/_matrix/client/v3/rooms/${enc(room.body.room_id)}/state/m.room.create`);
      expect(create.body.room_version).toBe('9');
      const explicit = await c.post('/_matrix/client/v3/createRoom', { room_version: '11' });
      const create11 = await c.get(`/_matrix/client/v3/rooms/${enc(explicit.body.room_id)}/state/m.room.create`);
      expect(create11.body.room_version).toBe('11');
    });
  },
  { config: { default_room_version: '9' } },
);
