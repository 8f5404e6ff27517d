/**
 * Schema conformance of a room version 12 room: every response, and every
 * event in it (the create event without a server in its room id, in the
 * client format with `room_id`), is validated against the OpenAPI and event
 * schemas, as in client-server.test.ts.
 */
import { beforeAll, expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../helpers/homeserver.js';
import { RawClient, enc } from '../helpers/http.js';
import { ConformClient } from './client.js';

const V3 = '/_matrix/client/v3';

describeShapes('room version 12 schema conformance', (server) => {
  let c: ConformClient;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let A: ConformClient;
  let B: ConformClient;

  beforeAll(async () => {
    c = new ConformClient(new RawClient(server().baseUrl));
    [alice, bob] = await Promise.all([server().registerUser(), server().registerUser()]);
    A = c.as(alice.accessToken);
    B = c.as(bob.accessToken);
  });

  it('create, join, send, state, messages, context, sync, power levels and upgrade conform', async () => {
    const created = await A.post(`${V3}/createRoom`, { room_version: '12', preset: 'public_chat', name: 'v12', creation_content: { additional_creators: [bob.userId] } });
    const roomId = created.body.room_id as string;
    expect(roomId).toMatch(/^![A-Za-z0-9_-]{43}$/);
    await A.post(`${V3}/createRoom`, { room_version: '12', power_level_content_override: { users: { [alice.userId]: 100 } } }, { status: 400, errcode: 'M_INVALID_PARAM' });
    await B.post(`${V3}/join/${enc(roomId)}`);
    const sent = await A.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/c12`, { msgtype: 'm.text', body: 'hi' });
    await A.get(`${V3}/rooms/${enc(roomId)}/state`);
    await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.create/`);
    await A.get(`${V3}/rooms/${enc(roomId)}/event/${enc('$' + roomId.slice(1))}`);
    await A.get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
    await A.get(`${V3}/rooms/${enc(roomId)}/context/${enc(sent.body.event_id)}?limit=10`);
    await A.get(`${V3}/rooms/${enc(roomId)}/members`);
    await A.get(`${V3}/sync`);
    const pl = (await A.get(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels/`)).body;
    await A.put(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels/`, { ...pl, users: { [alice.userId]: 100 } }, { status: 403, errcode: 'M_FORBIDDEN' });
    const up = await A.post(`${V3}/rooms/${enc(roomId)}/upgrade`, { new_version: '12', additional_creators: [bob.userId] });
    await A.get(`${V3}/rooms/${enc(up.body.replacement_room)}/state`);
    expect(c.violations, '\n' + c.violations.join('\n') + '\n').toEqual([]);
    expect(c.eventTypesChecked.has('m.room.create')).toBe(true);
  });
});
