/**
 * matrix-js-sdk scenario continuing the rooms conversation: edit a message
 * (m.replace), reply in a thread, react (m.annotation); each client checks
 * the bundled aggregations, relations, the threads list, search, the user
 * directory, the room summary, the hierarchy and an upgrade through the SDK.
 */
import * as sdk from 'matrix-js-sdk';
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { twoSdkUsers } from '../../helpers/sdk.js';

describeShapes('rooms-extra: matrix-js-sdk edits, threads, reactions', (server) => {
  it('sees edits, threads and reactions as each client expects', async () => {
    sdk.Thread.setServerSideListSupport(sdk.FeatureSupport.Stable);
    const { aliceU, bobU, alice, bob } = await twoSdkUsers(server());
    try {
      await alice.setDisplayName('Alice Sdk');
      await bob.setDisplayName('Bob Sdk');
      const { room_id: roomId } = await alice.createRoom({ name: 'Threads room', preset: sdk.Preset.PrivateChat, invite: [bobU.userId] });
      await bob.joinRoom(roomId);

      const root = (await alice.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'what about pangolins?' } as any)).event_id;
      const other = (await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'unrelated' } as any)).event_id;
      // alice edits her message
      const edit = await alice.sendEvent(roomId, 'm.room.message' as any, {
        msgtype: 'm.text',
        body: '* what about armadillos?',
        'm.new_content': { msgtype: 'm.text', body: 'what about armadillos?' },
        'm.relates_to': { rel_type: sdk.RelationType.Replace, event_id: root },
      } as any);
      // bob replies in a thread twice
      const r1 = await bob.sendEvent(roomId, sdk.EventType.RoomMessage, { msgtype: sdk.MsgType.Text, body: 'armadillos roll', 'm.relates_to': { rel_type: sdk.THREAD_RELATION_TYPE.name, event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: root } } } as any);
      const r2 = await bob.sendEvent(roomId, sdk.EventType.RoomMessage, { msgtype: sdk.MsgType.Text, body: 'and dig', 'm.relates_to': { rel_type: sdk.THREAD_RELATION_TYPE.name, event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: r1.event_id } } } as any);
      // both react to the root
      const thumbs = await bob.sendEvent(roomId, sdk.EventType.Reaction, { 'm.relates_to': { rel_type: sdk.RelationType.Annotation, event_id: root, key: '👍' } });
      await alice.sendEvent(roomId, sdk.EventType.Reaction, { 'm.relates_to': { rel_type: sdk.RelationType.Annotation, event_id: root, key: '🎉' } });

      for (const [client, me] of [[alice, aliceU], [bob, bobU]] as const) {
        // bundled aggregations on the root, through /event
        const ev = await client.fetchRoomEvent(roomId, root);
        const rel = (ev.unsigned as any)['m.relations'];
        expect(rel['m.replace'].event_id).toBe(edit.event_id);
        expect(rel['m.replace'].content['m.new_content'].body).toBe('what about armadillos?');
        expect(rel['m.thread']).toMatchObject({ count: 2, current_user_participated: true });
        expect(rel['m.thread'].latest_event.event_id).toBe(r2.event_id);
        expect(rel['m.annotation']).toBeUndefined(); // reactions are aggregated by clients
        // the SDK's MatrixEvent applies the edit
        const mev = new sdk.MatrixEvent(ev as any);
        const replacing = new sdk.MatrixEvent(rel['m.replace']);
        mev.makeReplaced(replacing);
        expect(mev.getContent().body).toBe('what about armadillos?');
        expect(mev.getOriginalContent().body).toBe('what about pangolins?');

        // relations through the SDK
        const annotations = await client.fetchRelations(roomId, root, sdk.RelationType.Annotation, sdk.EventType.Reaction);
        expect(annotations.chunk.map((e) => (e.content as any)['m.relates_to'].key).sort()).toEqual(['🎉', '👍']);
        expect(annotations.chunk.map((e) => e.event_id)).toContain(thumbs.event_id);
        const thread = await client.fetchRelations(roomId, root, sdk.THREAD_RELATION_TYPE.name, null, { dir: sdk.Direction.Forward });
        expect(thread.chunk.map((e) => e.event_id)).toEqual([r1.event_id, r2.event_id]);

        // the threads list (the SDK reverses it into timeline order)
        const list = await client.createThreadListMessagesRequest(roomId, null, 10, sdk.Direction.Backward, sdk.ThreadFilterType.All);
        expect(list.chunk.map((e) => e.event_id)).toEqual([root]);
        const mine = await client.createThreadListMessagesRequest(roomId, null, 10, sdk.Direction.Backward, sdk.ThreadFilterType.My);
        // alice started the thread, bob replied in it: both participated
        expect(mine.chunk.map((e) => e.event_id)).toEqual([root]);
        expect(me.userId).toBeTruthy();

        // /messages carries the thread summary too
        const page = await client.createMessagesRequest(roomId, null, 20, sdk.Direction.Backward);
        const served = page.chunk.find((e) => e.event_id === root)!;
        expect((served.unsigned as any)['m.relations']['m.thread'].count).toBe(2);
        expect(page.chunk.find((e) => e.event_id === other)!.unsigned?.['m.relations' as keyof typeof served.unsigned]).toBeUndefined();
      }

      // search through the SDK (order recent, context with profiles)
      const found = await bob.searchRoomEvents({ term: 'armadillos' });
      const bodies = found.results.map((r) => r.context.getEvent().getContent().body);
      expect(bodies).toContain('armadillos roll');
      expect(bodies).toContain('* what about armadillos?');

      // user directory, summary, hierarchy, report
      const dir = await alice.searchUserDirectory({ term: 'bob sdk' });
      expect(dir.results.map((u) => u.user_id)).toEqual([bobU.userId]);
      const summary = await bob.getRoomSummary(roomId);
      expect(summary).toMatchObject({ room_id: roomId, name: 'Threads room', num_joined_members: 2 });
      const hierarchy = await bob.getRoomHierarchy(roomId);
      expect(hierarchy.rooms.map((r) => r.room_id)).toEqual([roomId]);
      await bob.reportEvent(roomId, root, -50, 'testing reports');

      // and the room is upgraded
      const { replacement_room: next } = await alice.upgradeRoom(roomId, '10');
      const tomb = await bob.getStateEvent(roomId, sdk.EventType.RoomTombstone, '');
      expect(tomb.replacement_room).toBe(next);
      // the copied join rule is invite-only: bob needs an invite to follow
      await expect(bob.joinRoom(next)).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
      await alice.invite(next, bobU.userId);
      await bob.joinRoom(next);
      expect((await bob.getStateEvent(next, sdk.EventType.RoomName, '')).name).toBe('Threads room');
    } finally {
      alice.stopClient();
      bob.stopClient();
    }
  });
});
