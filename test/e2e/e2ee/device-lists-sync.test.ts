/** device_lists, one-time-key counts and fallback key types in /sync and /keys/changes, driven by key uploads and memberships. */
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { createRoom, invite, join, sync, user, type U } from '../sync/helpers.js';
import { oneTimeKeys, uploadDeviceKeys } from './keys-helpers.js';

/** Incremental syncs from `since` until `pred` holds for the accumulated device lists; returns them and the last token. */
async function syncUntil(u: U, since: string, pred: (changed: Set<string>, left: Set<string>, last: any) => boolean) {
  const changed = new Set<string>();
  const left = new Set<string>();
  let token = since;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await sync(u, { since: token, timeout: 500 });
    for (const x of res.device_lists?.changed ?? []) changed.add(x);
    for (const x of res.device_lists?.left ?? []) left.add(x);
    token = res.next_batch;
    if (pred(changed, left, res)) return { changed, left, token, last: res };
    if (Date.now() > deadline) throw new Error(`device lists never matched: changed=${[...changed]} left=${[...left]}`);
  }
}

describeShapes('e2ee: device lists in /sync', (server) => {
  it('reports room-mates whose keys changed, newcomers in changed, and leavers in left', async () => {
    const alice = await user(server());
    const bob = await user(server());
    const carol = await user(server());
    const roomId = await createRoom(alice, { preset: 'private_chat' });
    await invite(alice, roomId, bob.userId);
    await join(bob, roomId);
    // Let the membership-driven device-list entries land, then start from a quiet token.
    await new Promise((r) => setTimeout(r, 300));
    let token = (await sync(alice)).next_batch;
    const quiet = await sync(alice, { since: token, timeout: 300 });
    token = quiet.next_batch;
    expect((await sync(alice, { since: token, timeout: 0 })).device_lists?.changed ?? []).toEqual([]);

    // Bob uploads device keys: Alice sees him in changed; Carol (no shared room) does not.
    const carolToken = (await sync(carol)).next_batch;
    await uploadDeviceKeys(bob.c, bob.userId, bob.deviceId);
    const r1 = await syncUntil(alice, token, (c) => c.has(bob.userId));
    token = r1.token;
    const carolView = await sync(carol, { since: carolToken, timeout: 0 });
    expect(carolView.device_lists?.changed ?? []).not.toContain(bob.userId);

    // /keys/changes agrees between the two tokens.
    const ch = await alice.c.get(`/_matrix/client/v3/keys/changes?from=${enc(quiet.next_batch)}&to=${enc(token)}`);
    expect(ch.status).toBe(200);
    expect(ch.body.changed).toContain(bob.userId);

    // Carol joins: she appears in Alice's changed (they now share a room).
    await invite(alice, roomId, carol.userId);
    await join(carol, roomId);
    token = (await syncUntil(alice, token, (c) => c.has(carol.userId))).token;

    // Bob leaves: he is in Alice's left.
    const leave = await bob.c.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, {});
    expect(leave.status).toBe(200);
    const r2 = await syncUntil(alice, token, (_c, l) => l.has(bob.userId));
    expect(r2.changed.has(bob.userId)).toBe(false);
    expect(r2.left.has(carol.userId)).toBe(false);
  });

  it('carries one-time key counts and unused fallback key types', async () => {
    const alice = await user(server());
    const bob = await user(server());
    const { key } = await uploadDeviceKeys(alice.c, alice.userId, alice.deviceId, 3);
    await alice.c.post('/_matrix/client/v3/keys/upload', { fallback_keys: oneTimeKeys(alice.userId, alice.deviceId, key, 1, 'fb', true) });
    let s = await sync(alice);
    expect(s.device_one_time_keys_count.signed_curve25519).toBe(3);
    expect(s.device_unused_fallback_key_types).toEqual(['signed_curve25519']);
    for (let i = 0; i < 4; i++) {
      await bob.c.post('/_matrix/client/v3/keys/claim', { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } });
    }
    s = await sync(alice, { since: s.next_batch, timeout: 0 });
    expect(s.device_one_time_keys_count.signed_curve25519).toBe(0);
    expect(s.device_unused_fallback_key_types).toEqual([]);
  });
});
