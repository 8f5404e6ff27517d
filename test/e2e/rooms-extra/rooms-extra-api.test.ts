/**
 * rooms-extra over raw HTTP: relations, threads, bundled aggregations,
 * upgrades, space hierarchy, room summaries, search, user directory, TURN
 * credentials and reports, with their permission checks and bad inputs.
 */
import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient, enc } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';
const V1 = '/_matrix/client/v1';

describeShapes(
  'rooms-extra: relations, upgrades, spaces, summaries, search, directory, voip, reports',
  (server) => {
    let alice: RegisteredUser;
    let bob: RegisteredUser;
    let eve: RegisteredUser;
    const c = (u?: RegisteredUser) => new RawClient(server().baseUrl, u?.accessToken);
    let txn = 0;
    const send = async (u: RegisteredUser, roomId: string, content: Record<string, unknown>, type = 'm.room.message') => {
      const r = await c(u).put(`${V3}/rooms/${enc(roomId)}/send/${enc(type)}/t${++txn}`, content);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.event_id as string;
    };
    const createRoom = async (u: RegisteredUser, body: Record<string, unknown> = {}) => {
      const r = await c(u).post(`${V3}/createRoom`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.room_id as string;
    };
    const join = async (u: RegisteredUser, roomId: string) => {
      const r = await c(u).post(`${V3}/join/${enc(roomId)}`, {});
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    const putState = async (u: RegisteredUser, roomId: string, type: string, sk: string, content: Record<string, unknown>) => {
      const r = await c(u).put(`${V3}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(sk)}`, content);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.event_id as string;
    };

    it('registers users', async () => {
      alice = await server().registerUser(`alice${Date.now().toString(36)}`);
      bob = await server().registerUser();
      eve = await server().registerUser();
      await c(alice).put(`${V3}/profile/${enc(alice.userId)}/displayname`, { displayname: 'Alice Liddell' });
      await c(bob).put(`${V3}/profile/${enc(bob.userId)}/displayname`, { displayname: 'Bob Builder' });
    });

    // ------------------------------------------------------------ relations
    let roomId: string;
    let root: string;
    it('serves relations with pagination, filters and recursion', async () => {
      roomId = await createRoom(alice, { preset: 'public_chat', name: 'Relations' });
      await join(bob, roomId);
      root = await send(alice, roomId, { msgtype: 'm.text', body: 'root message' });
      const replies: string[] = [];
      for (let i = 0; i < 3; i++) {
        replies.push(await send(i % 2 ? alice : bob, roomId, { msgtype: 'm.text', body: `thread reply ${i}`, 'm.relates_to': { rel_type: 'm.thread', event_id: root } }));
      }
      const reaction = await send(bob, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '👍' } }, 'm.reaction');
      const reactionOnReply = await send(alice, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: replies[0], key: '🎉' } }, 'm.reaction');

      const all = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}`);
      expect(all.status).toBe(200);
      expect(all.body.chunk.map((e: any) => e.event_id)).toEqual([reaction, replies[2], replies[1], replies[0]]);

      const threadOnly = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}/m.thread?limit=2`);
      expect(threadOnly.body.chunk.map((e: any) => e.event_id)).toEqual([replies[2], replies[1]]);
      expect(threadOnly.body.next_batch).toBeTruthy();
      const page2 = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}/m.thread?limit=2&from=${enc(threadOnly.body.next_batch)}`);
      expect(page2.body.chunk.map((e: any) => e.event_id)).toEqual([replies[0]]);
      expect(page2.body.next_batch).toBeUndefined();

      const forward = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}/m.thread?dir=f`);
      expect(forward.body.chunk.map((e: any) => e.event_id)).toEqual(replies);

      const byType = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}/m.annotation/m.reaction`);
      expect(byType.body.chunk.map((e: any) => e.event_id)).toEqual([reaction]);
      const wrongType = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}/m.annotation/m.room.message`);
      expect(wrongType.body.chunk).toEqual([]);

      const rec = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}?recurse=true`);
      expect(rec.body.chunk.map((e: any) => e.event_id)).toContain(reactionOnReply);
      expect(rec.body.recursion_depth).toBe(2);
      const noRec = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}`);
      expect(noRec.body.chunk.map((e: any) => e.event_id)).not.toContain(reactionOnReply);
    });

    it('rejects bad relation requests', async () => {
      expect((await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc('$nope:x')}`)).body.errcode).toBe('M_NOT_FOUND');
      const bad = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}?dir=x`);
      expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      const badTok = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}?from=garbage`);
      expect([badTok.status, badTok.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      const badLimit = await c(bob).get(`${V1}/rooms/${enc(roomId)}/relations/${enc(root)}?limit=abc`);
      expect(badLimit.body.errcode).toBe('M_INVALID_PARAM');
      // not a member of a private room
      const priv = await createRoom(alice, { preset: 'private_chat' });
      const ev = await send(alice, priv, { msgtype: 'm.text', body: 'secret' });
      const r = await c(eve).get(`${V1}/rooms/${enc(priv)}/relations/${enc(ev)}`);
      expect([r.status, r.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      expect((await c(eve).get(`${V1}/rooms/${enc(priv)}/threads`)).status).toBe(403);
      expect((await c().get(`${V1}/rooms/${enc(roomId)}/threads`)).status).toBe(401);
    });

    it('bundles thread summaries, latest edits and references in served events', async () => {
      const edit1 = await send(alice, roomId, { msgtype: 'm.text', body: '* first', 'm.new_content': { msgtype: 'm.text', body: 'first' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      const edit2 = await send(alice, roomId, { msgtype: 'm.text', body: '* second', 'm.new_content': { msgtype: 'm.text', body: 'second' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      // an "edit" by someone else is not an edit
      await send(bob, roomId, { msgtype: 'm.text', body: '* hijack', 'm.new_content': { msgtype: 'm.text', body: 'hijack' }, 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
      const ref = await send(bob, roomId, { msgtype: 'm.text', body: 'see above', 'm.relates_to': { rel_type: 'm.reference', event_id: root } });

      const check = (ev: any, viewer: RegisteredUser) => {
        const rel = ev.unsigned['m.relations'];
        expect(rel['m.replace'].event_id).toBe(edit2);
        expect(rel['m.replace'].content['m.new_content'].body).toBe('second');
        expect(rel['m.thread'].count).toBe(3);
        expect(rel['m.thread'].latest_event.content.body).toBe('thread reply 2');
        expect(rel['m.thread'].current_user_participated).toBe(viewer === alice || viewer === bob);
        expect(rel['m.reference'].chunk).toEqual([{ event_id: ref }]);
        expect(ev.content.body).toBe('root message'); // content is not replaced (spec v1.7+)
      };
      const single = await c(bob).get(`${V3}/rooms/${enc(roomId)}/event/${enc(root)}`);
      expect(single.status, JSON.stringify(single.body)).toBe(200);
      check(single.body, bob);
      const msgs = await c(alice).get(`${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
      check(msgs.body.chunk.find((e: any) => e.event_id === root), alice);
      const ctx = await c(bob).get(`${V3}/rooms/${enc(roomId)}/context/${enc(root)}?limit=2`);
      check(ctx.body.event, bob);
      // eve joins the public room late: she has not participated
      await join(eve, roomId);
      const eveView = await c(eve).get(`${V3}/rooms/${enc(roomId)}/event/${enc(root)}`);
      check(eveView.body, eve);
      expect(edit1).not.toBe(edit2);
      // an edit of the latest thread event is bundled inside latest_event
      const threads = await c(bob).get(`${V1}/rooms/${enc(roomId)}/threads`);
      expect(threads.status).toBe(200);
      expect(threads.body.chunk.map((e: any) => e.event_id)).toEqual([root]);
      expect(threads.body.chunk[0].unsigned['m.relations']['m.thread'].count).toBe(3);
    });

    it('lists threads by latest activity, with include=participated and pagination', async () => {
      const r2 = await createRoom(alice, { preset: 'public_chat' });
      await join(bob, r2);
      const t1 = await send(alice, r2, { msgtype: 'm.text', body: 't1' });
      const t2 = await send(bob, r2, { msgtype: 'm.text', body: 't2' });
      const t3 = await send(bob, r2, { msgtype: 'm.text', body: 't3' });
      await send(bob, r2, { msgtype: 'm.text', body: 'r', 'm.relates_to': { rel_type: 'm.thread', event_id: t2 } });
      await send(bob, r2, { msgtype: 'm.text', body: 'r', 'm.relates_to': { rel_type: 'm.thread', event_id: t3 } });
      await send(bob, r2, { msgtype: 'm.text', body: 'r', 'm.relates_to': { rel_type: 'm.thread', event_id: t1 } });
      const all = await c(alice).get(`${V1}/rooms/${enc(r2)}/threads`);
      expect(all.body.chunk.map((e: any) => e.event_id)).toEqual([t1, t3, t2]);
      const mine = await c(alice).get(`${V1}/rooms/${enc(r2)}/threads?include=participated`);
      expect(mine.body.chunk.map((e: any) => e.event_id)).toEqual([t1]);
      const p1 = await c(alice).get(`${V1}/rooms/${enc(r2)}/threads?limit=2`);
      expect(p1.body.chunk.map((e: any) => e.event_id)).toEqual([t1, t3]);
      const p2 = await c(alice).get(`${V1}/rooms/${enc(r2)}/threads?limit=2&from=${enc(p1.body.next_batch)}`);
      expect(p2.body.chunk.map((e: any) => e.event_id)).toEqual([t2]);
      const bad = await c(alice).get(`${V1}/rooms/${enc(r2)}/threads?include=mine`);
      expect([bad.status, bad.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      expect((await c(alice).get(`${V1}/rooms/${enc(r2)}/threads?from=zz`)).body.errcode).toBe('M_INVALID_PARAM');
    });

    // -------------------------------------------------------------- upgrade
    it('upgrades a room: tombstone, predecessor, copied state, moved aliases, restricted old room', async () => {
      const alias = `#up${Date.now().toString(36)}:${server().serverName}`;
      const old = await createRoom(alice, { preset: 'public_chat', name: 'Old name', topic: 'Old topic', room_version: '9', visibility: 'public' });
      await join(bob, old);
      await join(eve, old);
      await putState(alice, old, 'm.room.guest_access', '', { guest_access: 'can_join' });
      await putState(alice, old, 'm.room.power_levels', '', {
        users: { [alice.userId]: 100, [bob.userId]: '50' }, users_default: 0, events_default: 0, state_default: 50, ban: 50, kick: 50, redact: 50, invite: 0,
        events: { 'm.room.tombstone': 100, 'm.room.power_levels': 100 },
      });
      expect((await c(alice).put(`${V3}/directory/room/${enc(alias)}`, { room_id: old })).status).toBe(200);
      const lastBefore = await putState(alice, old, 'm.room.canonical_alias', '', { alias });

      // bad inputs and permissions
      const unsupported = await c(alice).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: '999' });
      expect([unsupported.status, unsupported.body.errcode]).toEqual([400, 'M_UNSUPPORTED_ROOM_VERSION']);
      expect((await c(alice).post(`${V3}/rooms/${enc(old)}/upgrade`, {})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await c(alice).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: 10 })).body.errcode).toBe('M_BAD_JSON');
      const weak = await c(bob).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: '10' });
      expect([weak.status, weak.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      const outsider = await c(eve).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: '10' });
      expect(outsider.status).toBe(403);
      const unknown = await c(alice).post(`${V3}/rooms/${enc('!nope:' + server().serverName)}/upgrade`, { new_version: '10' });
      expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);

      const up = await c(alice).post(`${V3}/rooms/${enc(old)}/upgrade`, { new_version: '10' });
      expect(up.status, JSON.stringify(up.body)).toBe(200);
      const neu = up.body.replacement_room as string;
      expect(neu).toMatch(/^!/);

      const oldState = (await c(alice).get(`${V3}/rooms/${enc(old)}/state`)).body as any[];
      const oldBy = Object.fromEntries(oldState.map((e) => [`${e.type}|${e.state_key}`, e]));
      const tomb = oldBy['m.room.tombstone|'];
      expect(tomb.content.replacement_room).toBe(neu);
      expect(oldBy['m.room.power_levels|'].content.events_default).toBe(50);
      expect(oldBy['m.room.power_levels|'].content.invite).toBe(50);

      const newState = (await c(alice).get(`${V3}/rooms/${enc(neu)}/state`)).body as any[];
      const newBy = Object.fromEntries(newState.map((e) => [`${e.type}|${e.state_key}`, e]));
      // The new room is created before the tombstone is sent: its predecessor
      // names the last event of the old room before the upgrade.
      const pred = newBy['m.room.create|'].content.predecessor;
      expect(newBy['m.room.create|'].content).toMatchObject({ room_version: '10', predecessor: { room_id: old } });
      expect(pred.event_id).toBe(lastBefore);
      expect(newBy['m.room.name|'].content.name).toBe('Old name');
      expect(newBy['m.room.topic|'].content.topic).toBe('Old topic');
      expect(newBy['m.room.join_rules|'].content.join_rule).toBe('public');
      expect(newBy['m.room.guest_access|'].content.guest_access).toBe('can_join');
      expect(newBy['m.room.history_visibility|'].content.history_visibility).toBe('shared');
      // power levels restored after the copy, integers in the v10 room
      expect(newBy['m.room.power_levels|'].content.users).toEqual({ [alice.userId]: 100, [bob.userId]: 50 });
      expect(newBy[`m.room.member|${bob.userId}`]).toBeUndefined();
      expect(newBy[`m.room.member|${alice.userId}`].content.membership).toBe('join');
      // alias moved, canonical alias set in the new room, directory listing moved
      expect((await c(alice).get(`${V3}/directory/room/${enc(alias)}`)).body.room_id).toBe(neu);
      expect(newBy['m.room.canonical_alias|'].content.alias).toBe(alias);
      expect((await c(alice).get(`${V3}/directory/list/room/${enc(neu)}`)).body.visibility).toBe('public');
      expect((await c(alice).get(`${V3}/directory/list/room/${enc(old)}`)).body.visibility).toBe('private');
      // the old room is now read-only for ordinary members
      const blocked = await c(eve).put(`${V3}/rooms/${enc(old)}/send/m.room.message/late${txn++}`, { msgtype: 'm.text', body: 'late' });
      expect(blocked.status).toBe(403);
      await join(bob, neu);
    });

    // ---------------------------------------------------------------- spaces
    it('walks a space hierarchy with suggested_only, max_depth, limit and visibility', async () => {
      const space = await createRoom(alice, { name: 'Space', preset: 'public_chat', creation_content: { type: 'm.space' } });
      const sub = await createRoom(alice, { name: 'Subspace', preset: 'public_chat', creation_content: { type: 'm.space' } });
      const a = await createRoom(alice, { name: 'Room A', preset: 'public_chat' });
      const b = await createRoom(alice, { name: 'Room B', preset: 'public_chat' });
      const hidden = await createRoom(alice, { name: 'Hidden', preset: 'private_chat' });
      const via = [server().serverName];
      await putState(alice, space, 'm.space.child', sub, { via, order: 'a' });
      await putState(alice, space, 'm.space.child', a, { via, order: 'b', suggested: true });
      await putState(alice, space, 'm.space.child', hidden, { via, order: 'c' });
      await putState(alice, space, 'm.space.child', '!unknown:elsewhere.example', { via: ['elsewhere.example'] });
      await putState(alice, space, 'm.space.child', '!removed:x', {});
      await putState(alice, sub, 'm.space.child', b, { via });
      await putState(alice, sub, 'm.space.child', space, { via }); // a cycle

      const h = await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy`);
      expect(h.status, JSON.stringify(h.body)).toBe(200);
      expect(h.body.rooms.map((r: any) => r.room_id)).toEqual([space, sub, b, a]);
      const top = h.body.rooms[0];
      expect(top).toMatchObject({ name: 'Space', room_type: 'm.space', join_rule: 'public', num_joined_members: 1, world_readable: false, guest_can_join: false });
      expect(top.children_state.map((e: any) => e.state_key).sort()).toEqual([sub, a, hidden, '!unknown:elsewhere.example'].sort());
      expect(top.children_state[0]).toHaveProperty('origin_server_ts');
      // alice (a member of the private room) sees it
      const ha = await c(alice).get(`${V1}/rooms/${enc(space)}/hierarchy`);
      expect(ha.body.rooms.map((r: any) => r.room_id)).toContain(hidden);

      const suggested = await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?suggested_only=true`);
      expect(suggested.body.rooms.map((r: any) => r.room_id)).toEqual([space, a]);
      const shallow = await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?max_depth=1`);
      expect(shallow.body.rooms.map((r: any) => r.room_id)).toEqual([space, sub, a]);
      const p1 = await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?limit=2`);
      expect(p1.body.rooms.map((r: any) => r.room_id)).toEqual([space, sub]);
      const p2 = await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?limit=2&from=${enc(p1.body.next_batch)}`);
      expect(p2.body.rooms.map((r: any) => r.room_id)).toEqual([b, a]);
      expect(p2.body.next_batch).toBeUndefined();
      const changed = await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?limit=2&max_depth=3&from=${enc(p1.body.next_batch)}`);
      expect([changed.status, changed.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      expect((await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?from=junk`)).body.errcode).toBe('M_INVALID_PARAM');
      expect((await c(bob).get(`${V1}/rooms/${enc(space)}/hierarchy?limit=0`)).body.errcode).toBe('M_INVALID_PARAM');
      const denied = await c(bob).get(`${V1}/rooms/${enc(hidden)}/hierarchy`);
      expect([denied.status, denied.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    });

    // ------------------------------------------------------------- summaries
    it('summarises rooms on the stable and unstable paths', async () => {
      const alias = `sum${Date.now().toString(36)}`;
      const pub = await createRoom(alice, { name: 'Summary', topic: 'sum topic', preset: 'public_chat', room_alias_name: alias });
      const priv = await createRoom(alice, { name: 'Private', preset: 'private_chat' });
      const full = `#${alias}:${server().serverName}`;
      for (const path of [
        `${V1}/room_summary/${enc(full)}`,
        `/_matrix/client/unstable/im.nheko.summary/rooms/${enc(pub)}/summary`,
        `/_matrix/client/unstable/im.nheko.summary/summary/${enc(pub)}`,
      ]) {
        const r = await c(bob).get(path);
        expect(r.status, path + JSON.stringify(r.body)).toBe(200);
        expect(r.body).toMatchObject({ room_id: pub, name: 'Summary', topic: 'sum topic', num_joined_members: 1, join_rule: 'public', canonical_alias: full, membership: 'leave', world_readable: false, guest_can_join: false });
        expect(r.body.room_version).toBeTruthy();
      }
      expect((await c(alice).get(`${V1}/room_summary/${enc(pub)}`)).body.membership).toBe('join');
      // anonymous: public rooms only, without membership
      const anon = await c().get(`${V1}/room_summary/${enc(pub)}`);
      expect(anon.status).toBe(200);
      expect(anon.body.membership).toBeUndefined();
      expect((await c().get(`${V1}/room_summary/${enc(priv)}`)).status).toBe(404);
      const hiddenRoom = await c(bob).get(`${V1}/room_summary/${enc(priv)}`);
      expect([hiddenRoom.status, hiddenRoom.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
      // invited users may see it
      await c(alice).post(`${V3}/rooms/${enc(priv)}/invite`, { user_id: bob.userId });
      expect((await c(bob).get(`${V1}/room_summary/${enc(priv)}`)).body).toMatchObject({ name: 'Private', membership: 'invite', join_rule: 'invite' });
      expect((await c(bob).get(`${V1}/room_summary/${enc('#missing:' + server().serverName)}`)).status).toBe(404);
      expect((await c(bob).get(`${V1}/room_summary/notanid`)).body.errcode).toBe('M_INVALID_PARAM');
    });

    // ---------------------------------------------------------------- search
    it('searches messages the user may see, with order, context, groupings and pagination', async () => {
      const s1 = await createRoom(alice, { preset: 'private_chat', name: 'Giraffe facts' });
      await c(alice).post(`${V3}/rooms/${enc(s1)}/invite`, { user_id: bob.userId });
      const before = await send(alice, s1, { msgtype: 'm.text', body: 'giraffes before bob joined' });
      await join(bob, s1);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await send(i % 2 ? bob : alice, s1, { msgtype: 'm.text', body: `the giraffe number ${i} is tall` }));
      await send(alice, s1, { msgtype: 'm.text', body: 'unrelated zebra' });
      const other = await createRoom(eve, { preset: 'private_chat' });
      await send(eve, other, { msgtype: 'm.text', body: 'eve has a secret giraffe' });

      const search = (u: RegisteredUser, room_events: Record<string, unknown>, next?: string) =>
        c(u).post(`${V3}/search${next ? `?next_batch=${enc(next)}` : ''}`, { search_categories: { room_events } });

      // shared history: bob sees the message from before he joined (shared visibility)
      const r = await search(bob, { search_term: 'giraffe', order_by: 'recent', keys: ['content.body'] });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const re = r.body.search_categories.room_events;
      expect(re.results.map((x: any) => x.result.event_id)).toEqual([...ids].reverse().concat(before));
      expect(re.count).toBe(6);
      expect(re.highlights).toContain('giraffe');
      expect(typeof re.results[0].rank).toBe('number');
      // eve sees only her own room
      const e = await search(eve, { search_term: 'giraffe' });
      expect(e.body.search_categories.room_events.results.map((x: any) => x.result.body ?? x.result.content.body)).toEqual(['eve has a secret giraffe']);
      // pagination
      const p1 = await search(bob, { search_term: 'giraffe', order_by: 'recent', keys: ['content.body'], filter: { limit: 4 } });
      const re1 = p1.body.search_categories.room_events;
      expect(re1.results).toHaveLength(4);
      expect(re1.next_batch).toBeTruthy();
      const p2 = await search(bob, { search_term: 'giraffe', order_by: 'recent', keys: ['content.body'], filter: { limit: 4 } }, re1.next_batch);
      expect(p2.body.search_categories.room_events.results.map((x: any) => x.result.event_id)).toEqual([ids[0], before]);
      const rank1 = await search(bob, { search_term: 'giraffe', filter: { limit: 4 } });
      const rank2 = await search(bob, { search_term: 'giraffe', filter: { limit: 4 } }, rank1.body.search_categories.room_events.next_batch);
      const ranked = [...rank1.body.search_categories.room_events.results, ...rank2.body.search_categories.room_events.results].map((x: any) => x.result.event_id);
      expect(new Set(ranked).size).toBe(7); // six messages and the room name
      expect(rank2.body.search_categories.room_events.next_batch).toBeUndefined();
      // filter by sender, keys, rooms
      const bobs = await search(alice, { search_term: 'giraffe', filter: { senders: [bob.userId] } });
      expect(bobs.body.search_categories.room_events.results.map((x: any) => x.result.event_id).sort()).toEqual([ids[1], ids[3]].sort());
      const names = await search(alice, { search_term: 'giraffe', keys: ['content.name'] });
      expect(names.body.search_categories.room_events.results.map((x: any) => x.result.type)).toEqual(['m.room.name']);
      const notRoom = await search(alice, { search_term: 'giraffe', filter: { not_rooms: [s1] } });
      expect(notRoom.body.search_categories.room_events.results).toEqual([]);
      // several words must all match (prefix match)
      const two = await search(alice, { search_term: 'giraf number 3' });
      expect(two.body.search_categories.room_events.results.map((x: any) => x.result.event_id)).toEqual([ids[3]]);
      // context, profiles, groupings, state
      const ctx = await search(alice, {
        search_term: 'number 2', event_context: { before_limit: 1, after_limit: 1, include_profile: true },
        groupings: { group_by: [{ key: 'room_id' }, { key: 'sender' }] }, include_state: true,
      });
      const cre = ctx.body.search_categories.room_events;
      expect(cre.results).toHaveLength(1);
      const hit = cre.results[0];
      expect(hit.result.event_id).toBe(ids[2]);
      expect(hit.context.events_before.map((x: any) => x.event_id)).toEqual([ids[1]]);
      expect(hit.context.events_after.map((x: any) => x.event_id)).toEqual([ids[3]]);
      expect(hit.context.profile_info[alice.userId].displayname).toBe('Alice Liddell');
      expect(hit.context.profile_info[bob.userId].displayname).toBe('Bob Builder');
      expect(hit.context.start).toBeTruthy();
      expect(cre.groups.room_id[s1].results).toEqual([ids[2]]);
      expect(cre.groups.sender[alice.userId].results).toEqual([ids[2]]);
      expect(cre.state[s1].some((x: any) => x.type === 'm.room.create')).toBe(true);
      // redacted messages disappear from results
      await c(alice).put(`${V3}/rooms/${enc(s1)}/redact/${enc(ids[4]!)}/red${txn++}`, {});
      const afterRedact = await search(alice, { search_term: 'giraffe', order_by: 'recent' });
      expect(afterRedact.body.search_categories.room_events.results.map((x: any) => x.result.event_id)).not.toContain(ids[4]);
    });

    it('hides search results from before a user joined when history is joined-only', async () => {
      const room = await createRoom(alice, { preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }] });
      await send(alice, room, { msgtype: 'm.text', body: 'okapi early' });
      await join(eve, room);
      const late = await send(alice, room, { msgtype: 'm.text', body: 'okapi late' });
      const r = await c(eve).post(`${V3}/search`, { search_categories: { room_events: { search_term: 'okapi' } } });
      expect(r.body.search_categories.room_events.results.map((x: any) => x.result.event_id)).toEqual([late]);
      // after leaving, new messages are not found
      await c(eve).post(`${V3}/rooms/${enc(room)}/leave`, {});
      await send(alice, room, { msgtype: 'm.text', body: 'okapi after leave' });
      const r2 = await c(eve).post(`${V3}/search`, { search_categories: { room_events: { search_term: 'okapi' } } });
      expect(r2.body.search_categories.room_events.results.map((x: any) => x.result.event_id)).toEqual([late]);
    });

    it('orders by rank (better matches first) or by recency', async () => {
      const room = await createRoom(alice, {});
      const best = await send(alice, room, { msgtype: 'm.text', body: 'quokka quokka quokka' });
      const weak = await send(alice, room, { msgtype: 'm.text', body: 'a long sentence that mentions one quokka among many other different words here' });
      const s = async (order_by: string) =>
        (await c(alice).post(`${V3}/search`, { search_categories: { room_events: { search_term: 'quokka', order_by } } })).body.search_categories.room_events.results;
      const ranked = await s('rank');
      expect(ranked.map((x: any) => x.result.event_id)).toEqual([best, weak]);
      expect(ranked[0].rank).toBeGreaterThan(ranked[1].rank);
      expect((await s('recent')).map((x: any) => x.result.event_id)).toEqual([weak, best]);
    });

    it('rejects bad search requests', async () => {
      const s = (body: unknown, q = '') => c(alice).post(`${V3}/search${q}`, body);
      expect((await s({})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await s({ search_categories: { room_events: {} } })).body.errcode).toBe('M_MISSING_PARAM');
      expect((await s({ search_categories: { room_events: { search_term: 5 } } })).body.errcode).toBe('M_BAD_JSON');
      expect((await s({ search_categories: { room_events: { search_term: 'x', order_by: 'nope' } } })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await s({ search_categories: { room_events: { search_term: 'x', keys: ['content.x'] } } })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await s({ search_categories: { room_events: { search_term: 'x', filter: { senders: 'x' } } } })).body.errcode).toBe('M_BAD_JSON');
      expect((await s({ search_categories: { room_events: { search_term: 'x' } } }, '?next_batch=bogus')).body.errcode).toBe('M_INVALID_PARAM');
      const empty = await s({ search_categories: { room_events: { search_term: '!!!' } } });
      expect(empty.status).toBe(200);
      expect(empty.body.search_categories.room_events.results).toEqual([]);
      expect((await c().post(`${V3}/search`, {})).status).toBe(401);
    });

    // -------------------------------------------------------- user directory
    it('finds users who share a room or are in public rooms, following profile changes', async () => {
      const loner = await server().registerUser();
      await c(loner).put(`${V3}/profile/${enc(loner.userId)}/displayname`, { displayname: 'Lonely Larry' });
      const find = async (u: RegisteredUser, term: string, limit?: number) => {
        const r = await c(u).post(`${V3}/user_directory/search`, { search_term: term, ...(limit ? { limit } : {}) });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        return r.body as { results: Array<{ user_id: string; display_name?: string }>; limited: boolean };
      };
      // loner shares no room and is in no public room
      expect((await find(eve, 'Lonely')).results).toEqual([]);
      const priv = await createRoom(loner, { preset: 'private_chat', invite: [eve.userId] });
      expect((await find(eve, 'Lonely')).results).toEqual([]); // invited is not sharing
      await join(eve, priv);
      expect((await find(eve, 'lonely larry')).results).toEqual([{ user_id: loner.userId, display_name: 'Lonely Larry' }]);
      expect((await find(eve, loner.localpart)).results.map((x) => x.user_id)).toEqual([loner.userId]);
      // profile changes are reflected
      await c(loner).put(`${V3}/profile/${enc(loner.userId)}/displayname`, { displayname: 'Sociable Sam' });
      expect((await find(eve, 'lonely')).results).toEqual([]);
      expect((await find(eve, 'sociable')).results.map((x) => x.display_name)).toEqual(['Sociable Sam']);
      // leaving the shared room hides him again
      await c(eve).post(`${V3}/rooms/${enc(priv)}/leave`, {});
      expect((await find(eve, 'sociable')).results).toEqual([]);
      // users in public rooms are visible to anyone
      const pub = await createRoom(loner, { preset: 'public_chat' });
      expect((await find(eve, 'sociable')).results.map((x) => x.user_id)).toEqual([loner.userId]);
      await c(loner).post(`${V3}/rooms/${enc(pub)}/leave`, {});
      // limit / limited: alice and bob share public rooms with many users
      const lim = await find(bob, server().serverName, 1);
      expect(lim.results).toHaveLength(1);
      expect(lim.limited).toBe(true);
      // bad input
      expect((await c(eve).post(`${V3}/user_directory/search`, {})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await c(eve).post(`${V3}/user_directory/search`, { search_term: 1 })).body.errcode).toBe('M_BAD_JSON');
      expect((await c(eve).post(`${V3}/user_directory/search`, { search_term: 'x', limit: 'x' })).body.errcode).toBe('M_BAD_JSON');
    });

    // ------------------------------------------------------------------ voip
    it('hands out time-limited TURN credentials', async () => {
      const r = await c(bob).get(`${V3}/voip/turnServer`);
      expect(r.status).toBe(200);
      expect(r.body.uris).toEqual(['turn:turn.example.com:3478?transport=udp', 'turn:turn.example.com:3478?transport=tcp']);
      expect(r.body.ttl).toBe(7200);
      const [expiry, user] = [r.body.username.split(':')[0], r.body.username.slice(r.body.username.indexOf(':') + 1)];
      expect(user).toBe(bob.userId);
      expect(Number(expiry)).toBeGreaterThan(Date.now() / 1000 + 7000);
      expect(r.body.password).toBe(createHmac('sha1', 'turn-secret').update(r.body.username).digest('base64'));
      expect((await c().get(`${V3}/voip/turnServer`)).status).toBe(401);
    });

    // --------------------------------------------------------------- reports
    it('stores reports of events and rooms', async () => {
      const room = await createRoom(alice, { preset: 'public_chat' });
      const ev = await send(alice, room, { msgtype: 'm.text', body: 'rude' });
      const report = (u: RegisteredUser, body: unknown, eventId = ev, r = room) => c(u).post(`${V3}/rooms/${enc(r)}/report/${enc(eventId)}`, body);
      expect((await report(bob, { reason: 'rude' })).status).toBe(404); // not in the room
      await join(bob, room);
      const ok = await report(bob, { reason: 'rude', score: -100 });
      expect([ok.status, ok.body]).toEqual([200, {}]);
      expect((await report(bob, {})).status).toBe(200);
      expect((await report(bob, { reason: 'x' }, '$unknown:x')).body.errcode).toBe('M_NOT_FOUND');
      expect((await report(bob, { reason: 'x', score: 5 })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await report(bob, { reason: 'x', score: -101 })).body.errcode).toBe('M_INVALID_PARAM');
      expect((await report(bob, { reason: 5 })).body.errcode).toBe('M_BAD_JSON');
      expect((await report(bob, { score: 'bad' })).body.errcode).toBe('M_BAD_JSON');
      // an event of another room through this room id
      const elsewhere = await createRoom(bob, {});
      const other = await send(bob, elsewhere, { msgtype: 'm.text', body: 'hi' });
      expect((await report(bob, { reason: 'x' }, other)).status).toBe(404);
      // room reports (v1.13)
      expect((await c(eve).post(`${V3}/rooms/${enc(room)}/report`, { reason: 'spam room' })).status).toBe(200);
      expect((await c(eve).post(`${V3}/rooms/${enc(room)}/report`, {})).body.errcode).toBe('M_MISSING_PARAM');
      expect((await c(eve).post(`${V3}/rooms/${enc('!nope:' + server().serverName)}/report`, { reason: 'x' })).status).toBe(404);
    });
  },
  {
    config: {
      turn_uris: ['turn:turn.example.com:3478?transport=udp', 'turn:turn.example.com:3478?transport=tcp'],
      turn_shared_secret: 'turn-secret',
      turn_user_lifetime: '2h',
    },
  },
);
