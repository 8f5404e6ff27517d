/**
 * rooms-extra behaviour that depends on configuration: no turn_uris ({}),
 * user_directory.search_all_users; and bundled aggregations served in /sync.
 */
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';

describeShapes(
  'rooms-extra: configuration',
  (server) => {
    it('answers {} for turnServer without turn_uris', async () => {
      const u = await server().registerUser();
      const r = await new RawClient(server().baseUrl, u.accessToken).get(`${V3}/voip/turnServer`);
      expect([r.status, r.body]).toEqual([200, {}]);
    });

    it('finds every local user with search_all_users', async () => {
      const a = await server().registerUser();
      const lone = await server().registerUser(`hermit${Date.now().toString(36)}`);
      const r = await new RawClient(server().baseUrl, a.accessToken).post(`${V3}/user_directory/search`, { search_term: 'hermit' });
      expect(r.body.results.map((x: any) => x.user_id)).toEqual([lone.userId]);
      expect(r.body.limited).toBe(false);
    });

    it('bundles thread summaries into /sync timelines', async () => {
      const a = await server().registerUser();
      const c = new RawClient(server().baseUrl, a.accessToken);
      const room = (await c.post(`${V3}/createRoom`, {})).body.room_id as string;
      const root = (await c.put(`${V3}/rooms/${enc(room)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'root' })).body.event_id;
      await c.put(`${V3}/rooms/${enc(room)}/send/m.room.message/2`, { msgtype: 'm.text', body: 'reply', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
      // In the workers shape /sync runs in another process: wait until it has caught up.
      let ev: any;
      for (let i = 0; i < 20 && !ev?.unsigned?.['m.relations']; i++) {
        const sync = await c.get(`${V3}/sync`);
        expect(sync.status).toBe(200);
        ev = sync.body.rooms?.join?.[room]?.timeline.events.find((e: any) => e.event_id === root);
        if (!ev?.unsigned?.['m.relations']) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ev.unsigned['m.relations']['m.thread']).toMatchObject({ count: 1, current_user_participated: true });
      expect(ev.unsigned['m.relations']['m.thread'].latest_event.content.body).toBe('reply');
    });
  },
  { config: { user_directory: { search_all_users: true } } },
);
