/**
 * matrix-js-sdk with its real /sync loop (startClient): two clients see each
 * other's messages and typing live.
 */
import * as sdk from 'matrix-js-sdk';
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { twoSdkUsers } from '../../helpers/sdk.js';

function waitFor<T>(what: string, register: (done: (v: T) => void) => () => void, ms = 15000): Promise<T> {
  return new Promise((resolve, reject) => {
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    off = register((v) => {
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

async function started(client: sdk.MatrixClient): Promise<void> {
  const ready = waitFor<void>('initial sync', (done) => {
    const h = (state: string) => {
      if (state === 'PREPARED' || state === 'SYNCING') done();
    };
    client.on(sdk.ClientEvent.Sync, h);
    return () => client.off(sdk.ClientEvent.Sync, h);
  });
  await client.startClient({ initialSyncLimit: 10 });
  await ready;
}

function nextMessage(client: sdk.MatrixClient, roomId: string, body: string): Promise<sdk.MatrixEvent> {
  return waitFor(`message ${body}`, (done) => {
    const h = (ev: sdk.MatrixEvent, room: sdk.Room | undefined) => {
      if (room?.roomId === roomId && ev.getType() === 'm.room.message' && ev.getContent().body === body) done(ev);
    };
    client.on(sdk.RoomEvent.Timeline, h);
    return () => client.off(sdk.RoomEvent.Timeline, h);
  });
}

function typingChange(client: sdk.MatrixClient, userId: string, typing: boolean): Promise<void> {
  return waitFor(`typing=${typing} of ${userId}`, (done) => {
    const h = (_ev: sdk.MatrixEvent, member: sdk.RoomMember) => {
      if (member.userId === userId && member.typing === typing) done();
    };
    client.on(sdk.RoomMemberEvent.Typing, h);
    return () => client.off(sdk.RoomMemberEvent.Typing, h);
  });
}

describeShapes('sync: matrix-js-sdk live', (server) => {
  it('two syncing clients see each other’s messages and typing', async () => {
    const { aliceU, bobU, alice, bob } = await twoSdkUsers(server());
    try {
      const { room_id: roomId } = await alice.createRoom({ name: 'Live', preset: sdk.Preset.PublicChat });
      await bob.joinRoom(roomId);
      await Promise.all([started(alice), started(bob)]);

      const bobSees = nextMessage(bob, roomId, 'hi bob');
      await alice.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'hi bob' } as any);
      expect((await bobSees).getSender()).toBe(aliceU.userId);

      const aliceSees = nextMessage(alice, roomId, 'hi alice');
      await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'hi alice' } as any);
      expect((await aliceSees).getSender()).toBe(bobU.userId);

      const starts = typingChange(bob, aliceU.userId, true);
      await alice.sendTyping(roomId, true, 20000);
      await starts;
      const stops = typingChange(bob, aliceU.userId, false);
      await alice.sendTyping(roomId, false, 0);
      await stops;

      // the room as each client knows it
      expect(bob.getRoom(roomId)?.name).toBe('Live');
      expect(alice.getRoom(roomId)?.getJoinedMemberCount()).toBe(2);
    } finally {
      alice.stopClient();
      bob.stopClient();
    }
  });
});
