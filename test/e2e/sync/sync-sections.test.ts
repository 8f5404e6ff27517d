import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { expect, it } from 'vitest';
import { canonicalJson } from '../../../src/matrix/canonical-json.js';
import { encodeBase64 } from '../../../src/matrix/base64.js';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { createRoom, join, send, sync, user, syncUntil } from './helpers.js';

describeShapes('sync: summary, unread counts, receipts, account data', (server) => {
  it('summary has heroes and member counts', async () => {
    const a = await user(server());
    const b = await user(server());
    const c = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    await a.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: c.userId });
    const res = await sync(a);
    const summary = res.rooms.join[roomId].summary;
    expect(summary['m.joined_member_count']).toBe(2);
    expect(summary['m.invited_member_count']).toBe(1);
    expect(summary['m.heroes']).toEqual([b.userId, c.userId]);
    // a membership change in an incremental sync brings a fresh summary
    await join(c, roomId);
    const inc = await sync(a, { since: res.next_batch });
    expect(inc.rooms.join[roomId].summary['m.joined_member_count']).toBe(3);
    expect(inc.rooms.join[roomId].summary['m.invited_member_count']).toBe(0);
  });

  it('unread notifications rise with a message and fall with a read receipt, which arrives as ephemeral', async () => {
    const a = await user(server());
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const t0 = (await sync(a)).next_batch;
    const eventId = await send(b, roomId, 'unread me');
    const r1 = await sync(a, { since: t0 });
    expect(r1.rooms.join[roomId].unread_notifications.notification_count).toBe(1);
    const rr = await a.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {});
    expect(rr.status).toBe(200);
    const r2 = await sync(a, { since: r1.next_batch });
    const room = r2.rooms.join[roomId];
    expect(room.unread_notifications.notification_count).toBe(0);
    const receipt = room.ephemeral.events.find((e: any) => e.type === 'm.receipt');
    expect(receipt.content[eventId]['m.read'][a.userId]).toBeDefined();
  });

  it('room account data and global account data arrive incrementally', async () => {
    const a = await user(server());
    const roomId = await createRoom(a);
    const t0 = (await sync(a)).next_batch;
    await a.c.put(`/_matrix/client/v3/user/${enc(a.userId)}/rooms/${enc(roomId)}/account_data/org.example.room`, { r: 1 });
    await a.c.put(`/_matrix/client/v3/user/${enc(a.userId)}/account_data/org.example.global`, { g: 1 });
    const r = await sync(a, { since: t0 });
    expect(r.rooms.join[roomId].account_data.events).toEqual([{ type: 'org.example.room', content: { r: 1 } }]);
    expect(r.account_data.events.filter((e: any) => e.type.startsWith('org.example'))).toEqual([{ type: 'org.example.global', content: { g: 1 } }]);
    expect(r.rooms.join[roomId].timeline.events).toEqual([]);
  });

  it('a long-poll is woken by an invite to a new room', async () => {
    const a = await user(server());
    const b = await user(server());
    const t0 = (await sync(b)).next_batch;
    let roomId = '';
    const poll = syncUntil(b, t0, (res) => !!roomId && res.rooms?.invite?.[roomId] !== undefined);
    await new Promise((r) => setTimeout(r, 100));
    roomId = await createRoom(a);
    await a.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: b.userId });
    const res = await poll;
    expect(res.rooms.invite[roomId]).toBeDefined();
  });
});

describeShapes('sync: e2ee and presence sections', (server) => {
  it('device_one_time_keys_count reflects uploaded keys; device_lists appear in incremental syncs', async () => {
    const a = await user(server());
    const up = await a.c.post('/_matrix/client/v3/keys/upload', {
      one_time_keys: { 'signed_curve25519:AAAAAQ': { key: 'k1', signatures: {} }, 'signed_curve25519:AAAAAg': { key: 'k2', signatures: {} } },
    });
    expect(up.status).toBe(200);
    const res = await sync(a);
    expect(res.device_one_time_keys_count.signed_curve25519).toBe(2);
    expect(Array.isArray(res.device_unused_fallback_key_types)).toBe(true);
    // a user sharing a room changes their device keys: listed in device_lists.changed
    const b = await user(server());
    const roomId = await createRoom(a, { preset: 'public_chat' });
    await join(b, roomId);
    const t1 = (await sync(a)).next_batch;
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pub = encodeBase64(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
    const deviceKeys: Record<string, any> = {
      user_id: b.userId,
      device_id: b.deviceId,
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: { [`ed25519:${b.deviceId}`]: pub, [`curve25519:${b.deviceId}`]: pub },
    };
    const sig = encodeBase64(cryptoSign(null, Buffer.from(canonicalJson(deviceKeys)), privateKey));
    deviceKeys.signatures = { [b.userId]: { [`ed25519:${b.deviceId}`]: sig } };
    const keys = await b.c.post('/_matrix/client/v3/keys/upload', { device_keys: deviceKeys });
    expect(keys.status).toBe(200);
    const inc = await sync(a, { since: t1 });
    expect(inc.device_lists.changed).toContain(b.userId);
  });

  it('set_presence is validated and passed on', async () => {
    const a = await user(server());
    const bad = await a.c.get('/_matrix/client/v3/sync?set_presence=sleepy');
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    await sync(a, { set_presence: 'unavailable' });
    const st = await a.c.get(`/_matrix/client/v3/presence/${enc(a.userId)}/status`);
    expect(st.status).toBe(200);
    expect(st.body.presence).toBe('unavailable');
  });
});
