import { beforeAll, expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { enc } from '../../helpers/http.js';
import { room, send, sync, user, type U } from './helpers.js';

const P = '/_matrix/client/v3/pushrules';

describeShapes('push rules API', (server) => {
  let alice: U;
  let bob: U;

  beforeAll(async () => {
    alice = await user(server());
    bob = await user(server());
  });

  it('serves the default rule set', async () => {
    const all = await alice.c.get(`${P}/`);
    expect(all.status).toBe(200);
    const g = all.body.global;
    expect(g.override[0]).toMatchObject({ rule_id: '.m.rule.master', default: true, enabled: false });
    expect(g.override.map((r: any) => r.rule_id)).toContain('.m.rule.is_user_mention');
    expect(g.content[0]).toMatchObject({ rule_id: '.m.rule.contains_user_name', pattern: alice.localpart });
    expect(g.underride.map((r: any) => r.rule_id)).toContain('.m.rule.message');
    expect(g.room).toEqual([]);
    expect(g.sender).toEqual([]);
    expect((await alice.c.get(`${P}/global/`)).body).toEqual(g);
    const one = await alice.c.get(`${P}/global/underride/.m.rule.message`);
    expect(one.body).toMatchObject({ rule_id: '.m.rule.message', actions: ['notify'], enabled: true, default: true });
    expect((await alice.c.get(`${P}/global/underride/.m.rule.message/enabled`)).body).toEqual({ enabled: true });
    expect((await alice.c.get(`${P}/global/underride/.m.rule.message/actions`)).body).toEqual({ actions: ['notify'] });
    // m.push_rules in the initial sync.
    const s = await sync(alice);
    expect(s.account_data.events.find((e: any) => e.type === 'm.push_rules')?.content?.global?.override?.[0]?.rule_id).toBe('.m.rule.master');
  });

  it('creates, orders, updates and deletes user rules', async () => {
    const s0 = await sync(alice);
    const put = (kind: string, id: string, body: unknown, q = '') => alice.c.put(`${P}/global/${kind}/${enc(id)}${q}`, body);
    expect((await put('content', 'cake', { pattern: 'cake', actions: ['notify'] })).status).toBe(200);
    expect((await put('content', 'pie', { pattern: 'pie', actions: ['notify'] })).status).toBe(200);
    expect((await put('content', 'tart', { pattern: 'tart', actions: ['notify'] }, '?after=cake')).status).toBe(200);
    expect((await put('content', 'scone', { pattern: 'scone', actions: ['notify'] }, '?before=pie')).status).toBe(200);
    const ids = (await alice.c.get(`${P}/global/`)).body.content.map((r: any) => r.rule_id);
    // New rules go first; before/after place them next to the anchor; defaults last.
    expect(ids).toEqual(['scone', 'pie', 'cake', 'tart', '.m.rule.contains_user_name']);
    // Updating keeps the place and the enabled flag.
    expect((await alice.c.put(`${P}/global/content/cake/enabled`, { enabled: false })).status).toBe(200);
    expect((await put('content', 'cake', { pattern: 'cakes', actions: [] })).status).toBe(200);
    const cake = (await alice.c.get(`${P}/global/content/cake`)).body;
    expect(cake).toEqual({ rule_id: 'cake', pattern: 'cakes', actions: [], enabled: false, default: false });
    expect((await alice.c.get(`${P}/global/`)).body.content.map((r: any) => r.rule_id).indexOf('cake')).toBe(2);
    // Override rules with conditions; room and sender rules.
    const ov = { conditions: [{ kind: 'event_match', key: 'content.body', pattern: 'beer' }, { kind: 'room_member_count', is: '<=10' }], actions: ['notify', { set_tweak: 'sound', value: 'beeroclock.wav' }] };
    expect((await put('override', 'beer', ov)).status).toBe(200);
    expect((await alice.c.get(`${P}/global/override/beer`)).body).toMatchObject({ ...ov, enabled: true, default: false });
    expect((await alice.c.get(`${P}/global/`)).body.override.map((r: any) => r.rule_id).slice(0, 2)).toEqual(['.m.rule.master', 'beer']);
    expect((await put('room', '!abc:example.org', { actions: [] })).status).toBe(200);
    expect((await put('sender', '@spam:example.org', { actions: [] })).status).toBe(200);
    // Actions endpoint.
    expect((await alice.c.put(`${P}/global/content/pie/actions`, { actions: ['notify', { set_tweak: 'highlight' }] })).status).toBe(200);
    expect((await alice.c.get(`${P}/global/content/pie/actions`)).body).toEqual({ actions: ['notify', { set_tweak: 'highlight' }] });
    // Default rules: enable and change actions, but not delete.
    expect((await alice.c.put(`${P}/global/override/.m.rule.master/enabled`, { enabled: true })).status).toBe(200);
    expect((await alice.c.get(`${P}/global/override/.m.rule.master`)).body.enabled).toBe(true);
    expect((await alice.c.put(`${P}/global/override/.m.rule.master/enabled`, { enabled: false })).status).toBe(200);
    expect((await alice.c.put(`${P}/global/underride/.m.rule.message/actions`, { actions: [] })).status).toBe(200);
    expect((await alice.c.get(`${P}/global/underride/.m.rule.message`)).body.actions).toEqual([]);
    expect((await alice.c.put(`${P}/global/underride/.m.rule.message/actions`, { actions: ['notify'] })).status).toBe(200);
    const del = await alice.c.delete(`${P}/global/underride/.m.rule.message`);
    expect(del.status).toBe(400);
    // Delete.
    expect((await alice.c.delete(`${P}/global/content/tart`)).status).toBe(200);
    const gone = await alice.c.get(`${P}/global/content/tart`);
    expect(gone.status).toBe(404);
    expect(gone.body.errcode).toBe('M_NOT_FOUND');
    expect((await alice.c.delete(`${P}/global/content/tart`)).status).toBe(404);
    // The change arrives through /sync; Bob's rules are untouched.
    const s1 = await sync(alice, s0.next_batch);
    const ev = s1.account_data?.events?.find((e: any) => e.type === 'm.push_rules');
    expect(ev?.content?.global?.content?.map((r: any) => r.rule_id)).toEqual(['scone', 'pie', 'cake', '.m.rule.contains_user_name']);
    expect((await bob.c.get(`${P}/global/content/pie`)).status).toBe(404);
  });

  it('rejects bad input', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['PUT', `${P}/global/nonsense/x`, { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['PUT', `${P}/global/override/.mine`, { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['PUT', `${P}/global/override/a%5Cb`, { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['PUT', `${P}/global/override/x`, {}, 400, 'M_MISSING_PARAM'],
      ['PUT', `${P}/global/override/x`, { actions: 'notify' }, 400, 'M_BAD_JSON'],
      ['PUT', `${P}/global/override/x`, { actions: ['explode'] }, 400, 'M_BAD_JSON'],
      ['PUT', `${P}/global/override/x`, { actions: [], conditions: [{ key: 'type' }] }, 400, 'M_BAD_JSON'],
      ['PUT', `${P}/global/content/x`, { actions: [] }, 400, 'M_MISSING_PARAM'],
      ['PUT', `${P}/global/room/not-a-room`, { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['PUT', `${P}/global/sender/not-a-user`, { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['PUT', `${P}/global/override/x?before=nothere`, { actions: [] }, 404, 'M_NOT_FOUND'],
      ['PUT', `${P}/global/override/x?after=.m.rule.master`, { actions: [] }, 400, 'M_INVALID_PARAM'],
      ['PUT', `${P}/global/override/nothere/enabled`, { enabled: true }, 404, 'M_NOT_FOUND'],
      ['PUT', `${P}/global/override/.m.rule.master/enabled`, { enabled: 'yes' }, 400, 'M_BAD_JSON'],
      ['PUT', `${P}/global/override/.m.rule.master/enabled`, {}, 400, 'M_MISSING_PARAM'],
      ['PUT', `${P}/global/override/.m.rule.nope/actions`, { actions: [] }, 404, 'M_NOT_FOUND'],
      ['PUT', `${P}/global/override/.m.rule.master/actions`, { actions: 5 }, 400, 'M_BAD_JSON'],
      ['GET', `${P}/global/override/nothere`, undefined, 404, 'M_NOT_FOUND'],
      ['GET', `${P}/global/sideways/nothere`, undefined, 400, 'M_INVALID_PARAM'],
      ['DELETE', `${P}/global/override/nothere`, undefined, 404, 'M_NOT_FOUND'],
    ];
    for (const [method, path, body, status, errcode] of cases) {
      const res = await alice.c.request(method, path, body);
      expect({ method, path, status: res.status, errcode: res.body?.errcode }).toEqual({ method, path, status, errcode });
    }
    expect((await alice.c.get(`${P}/`, { token: null })).status).toBe(401);
  });

  it('user rules change what notifies', async () => {
    const r = await room(alice, bob);
    // Bob silences the room; Alice's message then does not count.
    expect((await bob.c.put(`${P}/global/room/${enc(r)}`, { actions: [] })).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'muted' });
    expect((await sync(bob)).rooms.join[r].unread_notifications.notification_count).toBe(0);
    expect((await bob.c.delete(`${P}/global/room/${enc(r)}`)).status).toBe(200);
    await send(alice, r, { msgtype: 'm.text', body: 'loud' });
    expect((await sync(bob)).rooms.join[r].unread_notifications.notification_count).toBe(1);
  });
});
