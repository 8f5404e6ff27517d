/**
 * Every acknowledged send survives kill -9 of the monolith: the 200 of
 * PUT /send comes only after the event's group commit (on SQLite, the writer
 * thread's COMMIT with synchronous=FULL), so after a restart on the same
 * database each acknowledged event is in the room's timeline, its
 * transaction id still maps to it, and the room goes on from it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shapesUnderTest, startServer, type RegisteredUser, type TestServer } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';

// The monolith shapes (the worker shape kills a persister in test/e2e/workers/faults.test.ts).
const shapes = shapesUnderTest().filter((s) => s !== 'workers');
describe.skipIf(shapes.length === 0)('kill -9 of the monolith', () => {
  for (const shape of shapes) {
    describe(`acknowledged events survive kill -9 [${shape}]`, () => {
      let server: TestServer;
      let alice: RegisteredUser;
      const c = () => new RawClient(server.baseUrl, alice.accessToken);

      beforeAll(async () => {
        server = await startServer({ shape });
        alice = await server.registerUser();
      });
      afterAll(async () => {
        await server?.stop();
      });

      it('keeps every acknowledged event, its transaction id and the room chain', async () => {
        const created = await c().post(`${V3}/createRoom`, {});
        expect(created.status).toBe(200);
        const roomId = created.body.room_id as string;
        // Many sends in flight at once (they share group commits), killed right after the last acknowledgement.
        const sends = await Promise.all(
          Array.from({ length: 60 }, (_, i) => c().put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/k${i}`, { msgtype: 'm.text', body: `m${i}` })),
        );
        for (const s of sends) expect(s.status, JSON.stringify(s.body)).toBe(200);
        const ids = sends.map((s) => s.body.event_id as string);
        await server.stopProcess('SIGKILL');
        await server.start();

        const page = await c().get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=200`);
        expect(page.status).toBe(200);
        const seen = new Set((page.body.chunk as any[]).map((e) => e.event_id));
        expect(ids.filter((id) => !seen.has(id))).toEqual([]);
        // The transaction ids were committed with their events.
        const again = await c().put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/k7`, { msgtype: 'm.text', body: 'm7' });
        expect(again.status).toBe(200);
        expect(again.body.event_id).toBe(ids[7]);
        // The room goes on after the restart, from an acknowledged event.
        const next = await c().put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/after`, { msgtype: 'm.text', body: 'after' });
        expect(next.status).toBe(200);
        const ctx = await c().get(`${V3}/rooms/${enc(roomId)}/context/${enc(next.body.event_id)}?limit=2`);
        expect(ctx.status).toBe(200);
        expect(ids).toContain((ctx.body.events_before as any[])[0]?.event_id);
      });
    });
  }
});
