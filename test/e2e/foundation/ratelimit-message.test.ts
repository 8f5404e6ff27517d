/** rc_message: senders over the limit get 429 M_LIMIT_EXCEEDED with retry_after_ms; admins do not. */
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

describeShapes(
  'rc_message',
  (server) => {
    it('limits a sender after burst_count messages, but not an admin', async () => {
      const alice = await server().registerUser();
      const admin = await server().registerUser(undefined, { admin: true });
      const a = new RawClient(server().baseUrl, alice.accessToken);
      const room = await a.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' });
      expect(room.status).toBe(200);
      const roomId = room.body.room_id as string;
      const statuses: number[] = [];
      let limited: any;
      for (let i = 0; i < 5; i++) {
        const r = await a.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t${i}`, { msgtype: 'm.text', body: `m${i}` });
        statuses.push(r.status);
        if (r.status === 429) limited = r;
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses.slice(3)).toEqual([429, 429]);
      expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(limited.body.retry_after_ms).toBeGreaterThan(0);
      // Nothing was stored for the refused sends.
      const msgs = await a.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
      const bodies = msgs.body.chunk.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body);
      expect(bodies.sort()).toEqual(['m0', 'm1', 'm2']);

      const ad = new RawClient(server().baseUrl, admin.accessToken);
      expect((await ad.post(`/_matrix/client/v3/join/${enc(roomId)}`, {})).status).toBe(200);
      for (let i = 0; i < 5; i++) {
        const r = await ad.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/a${i}`, { msgtype: 'm.text', body: `a${i}` });
        expect(r.status).toBe(200);
      }
    });
  },
  // createRoom itself sends several events, but not through /send.
  { config: { rc_message: { per_second: 0.001, burst_count: 3 } } },
);
