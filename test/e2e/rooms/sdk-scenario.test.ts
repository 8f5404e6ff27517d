/**
 * matrix-js-sdk scenario: two users create a room, invite, join, exchange
 * messages, edit, react, redact and page back through history; each
 * client's view is asserted. Uses the SDK's HTTP API calls (no /sync loop).
 */
import * as sdk from 'matrix-js-sdk';
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { twoSdkUsers } from '../../helpers/sdk.js';

describeShapes('rooms: matrix-js-sdk conversation', (server) => {
  it('holds a conversation between two clients', async () => {
    const { aliceU, bobU, alice, bob } = await twoSdkUsers(server());
    try {
      await alice.setDisplayName('Alice');
      const { room_id: roomId } = await alice.createRoom({ name: 'SDK room', preset: sdk.Preset.PrivateChat });
      await expect(bob.joinRoom(roomId)).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
      await alice.invite(roomId, bobU.userId);
      await bob.joinRoom(roomId);
      expect((await bob.getJoinedRooms()).joined_rooms).toContain(roomId);

      const sent: string[] = [];
      for (let i = 0; i < 6; i++) {
        const who = i % 2 ? bob : alice;
        sent.push((await who.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: `msg ${i}` } as any)).event_id);
      }
      // an edit and a reaction (stored with their relation; aggregation is another capability)
      const edit = await alice.sendEvent(roomId, 'm.room.message' as any, {
        msgtype: 'm.text',
        body: '* msg 0 edited',
        'm.new_content': { msgtype: 'm.text', body: 'msg 0 edited' },
        'm.relates_to': { rel_type: 'm.replace', event_id: sent[0] },
      } as any);
      const reaction = await bob.sendEvent(roomId, 'm.reaction' as any, {
        'm.relates_to': { rel_type: 'm.annotation', event_id: sent[0], key: '👍' },
      } as any);
      // bob redacts his own message; he cannot redact alice's
      await bob.redactEvent(roomId, sent[1]!);
      await expect(bob.redactEvent(roomId, sent[2]!)).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });

      // both clients page back through history, 3 events at a time
      const pageAll = async (client: sdk.MatrixClient) => {
        const events: any[] = [];
        let from: string | null = null;
        for (let i = 0; i < 20; i++) {
          const res = await client.createMessagesRequest(roomId, from, 3, sdk.Direction.Backward);
          events.push(...res.chunk);
          if (!res.end) break;
          from = res.end;
        }
        return events;
      };
      for (const client of [alice, bob]) {
        const events = await pageAll(client);
        expect(events[events.length - 1].type).toBe('m.room.create');
        const messages = events.filter((e) => e.type === 'm.room.message');
        const byId = new Map(messages.map((e) => [e.event_id, e]));
        expect(byId.get(sent[1]!)!.content).toEqual({});
        expect(byId.get(sent[1]!)!.unsigned.redacted_because.sender).toBe(bobU.userId);
        expect(byId.get(sent[2]!)!.content.body).toBe('msg 2');
        expect(byId.get(edit.event_id)!.content['m.relates_to']).toEqual({ rel_type: 'm.replace', event_id: sent[0] });
        expect(events.find((e) => e.event_id === reaction.event_id)?.content['m.relates_to'].key).toBe('👍');
        expect(messages.filter((e) => !e.content['m.relates_to']).map((e) => e.content.body ?? null).reverse()).toEqual([
          'msg 0', null, 'msg 2', 'msg 3', 'msg 4', 'msg 5',
        ]);
        // transaction ids only for the sending device
        const aliceMsg = byId.get(sent[0]!)!;
        if (client === alice) expect(aliceMsg.unsigned.transaction_id).toBeTruthy();
        else expect(aliceMsg.unsigned.transaction_id).toBeUndefined();
      }
      // single event fetch and members
      const ev = await bob.fetchRoomEvent(roomId, sent[4]!);
      expect(ev.content?.body).toBe('msg 4');
      const members = await alice.members(roomId);
      expect(members.chunk.map((e: any) => [e.state_key, e.content.membership]).sort()).toEqual(
        [[aliceU.userId, 'join'], [bobU.userId, 'join']].sort(),
      );
      const aliceMember = members.chunk.find((e: any) => e.state_key === aliceU.userId) as any;
      expect(aliceMember.content.displayname).toBe('Alice');

      // bob leaves: he keeps history up to his leave, not after
      await bob.leave(roomId);
      await alice.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'after bob left' } as any);
      const bobEvents = await pageAll(bob);
      expect(bobEvents.some((e) => e.content?.body === 'after bob left')).toBe(false);
      expect(bobEvents.some((e) => e.content?.body === 'msg 5')).toBe(true);
      const aliceEvents = await pageAll(alice);
      expect(aliceEvents[0].content.body).toBe('after bob left');
    } finally {
      alice.stopClient();
      bob.stopClient();
    }
  });
});
