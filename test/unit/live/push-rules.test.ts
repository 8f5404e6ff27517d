import { describe, expect, it } from 'vitest';
import {
  buildRuleset,
  conditionMatches,
  DefaultRulesEvaluator,
  memberBodyWords,
  MemberWordIndex,
  evaluate,
  globMatches,
  globMatchesWords,
  memberCountMatches,
  RULE_KINDS,
  sameOutcome,
  splitPropertyPath,
  type EvalContext,
  type PushRule,
  type RuleKind,
} from '../../../src/matrix/push-rules.js';
import { PushRulesService } from '../../../src/services/push/push-rules-service.js';
import type { PushStore } from '../../../src/storage/live/push-store.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';

function noUserRules(): Record<RuleKind, PushRule[]> {
  const r = {} as Record<RuleKind, PushRule[]>;
  for (const k of RULE_KINDS) r[k] = [];
  return r;
}

const defaults = () => buildRuleset(ALICE, noUserRules(), new Map());

function ctx(over: Partial<EvalContext> = {}): EvalContext {
  return { userId: ALICE, displayName: 'Alice Liddell', memberCount: 5, senderPowerLevel: 0, notificationLevel: () => 50, ...over };
}

function msg(body: string, extra: Record<string, any> = {}) {
  return { type: 'm.room.message', room_id: '!r:example.org', sender: BOB, event_id: '$e', content: { msgtype: 'm.text', body, ...extra } };
}

describe('globs and paths', () => {
  it('matches whole values case-insensitively with * and ?', () => {
    expect(globMatches('lunc?*', 'Lunch plans')).toBe(true);
    expect(globMatches('lunc?*', 'LUNCH')).toBe(true);
    expect(globMatches('lunc?*', ' lunch')).toBe(false);
    expect(globMatches('lunc?*', 'lunc')).toBe(false);
    expect(globMatches('m.room.*', 'm.room.message')).toBe(true);
    expect(globMatches('m.room.message', 'm_room_message')).toBe(false); // '.' is literal
  });

  it('matches body patterns at word boundaries', () => {
    expect(globMatchesWords('ex*ple', 'An example event.')).toBe(true);
    expect(globMatchesWords('ex*ple', 'exple')).toBe(true);
    expect(globMatchesWords('ex*ple', 'An exciting triple-whammy')).toBe(true);
    expect(globMatchesWords('cake', 'I like cakes')).toBe(false);
    expect(globMatchesWords('cake', 'cake!')).toBe(true);
  });

  it('splits dot paths with escapes', () => {
    expect(splitPropertyPath('content.m\\.relates_to.rel_type')).toEqual(['content', 'm.relates_to', 'rel_type']);
    expect(splitPropertyPath('content.m\\\\foo')).toEqual(['content', 'm\\foo']);
    expect(splitPropertyPath('content.a\\xb')).toEqual(['content', 'a\\xb']);
  });

  it('parses room_member_count', () => {
    expect(memberCountMatches('2', 2)).toBe(true);
    expect(memberCountMatches('==2', 3)).toBe(false);
    expect(memberCountMatches('<10', 9)).toBe(true);
    expect(memberCountMatches('>=3', 3)).toBe(true);
    expect(memberCountMatches('>3', 3)).toBe(false);
    expect(memberCountMatches('lots', 3)).toBe(false);
  });
});

describe('conditions', () => {
  it('event_match does not match absent or non-string values, even with *', () => {
    const ev = { type: 'm.room.topic', content: { topic: null, n: 3 } };
    expect(conditionMatches({ kind: 'event_match', key: 'content.topic', pattern: '*' }, ev, ctx())).toBe(false);
    expect(conditionMatches({ kind: 'event_match', key: 'content.n', pattern: '*' }, ev, ctx())).toBe(false);
    expect(conditionMatches({ kind: 'event_match', key: 'content.missing', pattern: '*' }, ev, ctx())).toBe(false);
  });

  it('event_property_is matches exact simple values without casting', () => {
    const ev = { content: { 'm.federate': true, s: 'true', one: 1 } };
    expect(conditionMatches({ kind: 'event_property_is', key: 'content.m\\.federate', value: true }, ev, ctx())).toBe(true);
    expect(conditionMatches({ kind: 'event_property_is', key: 'content.s', value: true }, ev, ctx())).toBe(false);
    expect(conditionMatches({ kind: 'event_property_is', key: 'content.one', value: true }, ev, ctx())).toBe(false);
  });

  it('event_property_contains matches array members exactly', () => {
    const ev = { content: { alt_aliases: ['#somewhere:example.org', '#myroom:example.com'] } };
    expect(conditionMatches({ kind: 'event_property_contains', key: 'content.alt_aliases', value: '#myroom:example.com' }, ev, ctx())).toBe(true);
    expect(conditionMatches({ kind: 'event_property_contains', key: 'content.alt_aliases', value: ':example.com' }, ev, ctx())).toBe(false);
  });

  it('unknown conditions never match', () => {
    expect(conditionMatches({ kind: 'org.example.magic' }, msg('hi'), ctx())).toBe(false);
  });
});

describe('default rules', () => {
  it('orders kinds with user rules before defaults, master first', () => {
    const own = noUserRules();
    own.override.push({ rule_id: 'mine', default: false, enabled: true, actions: [], conditions: [] });
    const rs = buildRuleset(ALICE, own, new Map());
    expect(rs.override.map((r) => r.rule_id).slice(0, 3)).toEqual(['.m.rule.master', 'mine', '.m.rule.suppress_notices']);
    expect(rs.content[0]!.pattern).toBe('alice');
    expect(rs.underride.map((r) => r.rule_id)).toEqual([
      '.m.rule.call',
      '.m.rule.encrypted_room_one_to_one',
      '.m.rule.room_one_to_one',
      '.m.rule.message',
      '.m.rule.encrypted',
    ]);
    const mention = rs.override.find((r) => r.rule_id === '.m.rule.is_user_mention')!;
    expect(mention.conditions![0]!.value).toBe(ALICE);
  });

  it('a plain message in a group room notifies without highlight', () => {
    const r = evaluate(defaults(), msg('hello there'), ctx());
    expect(r.rule?.rule_id).toBe('.m.rule.message');
    expect(r.notify).toBe(true);
    expect(r.highlight).toBe(false);
  });

  it('one-to-one rooms notify with a sound', () => {
    const r = evaluate(defaults(), msg('hello'), ctx({ memberCount: 2 }));
    expect(r.rule?.rule_id).toBe('.m.rule.room_one_to_one');
    expect(r.actions).toContainEqual({ set_tweak: 'sound', value: 'default' });
    const enc = evaluate(defaults(), { type: 'm.room.encrypted', sender: BOB, content: { ciphertext: 'x' } }, ctx({ memberCount: 2 }));
    expect(enc.rule?.rule_id).toBe('.m.rule.encrypted_room_one_to_one');
    const encGroup = evaluate(defaults(), { type: 'm.room.encrypted', sender: BOB, content: {} }, ctx({ memberCount: 3 }));
    expect(encGroup.rule?.rule_id).toBe('.m.rule.encrypted');
  });

  it('notices are suppressed', () => {
    const r = evaluate(defaults(), msg('bot says hi', { msgtype: 'm.notice' }), ctx());
    expect(r.rule?.rule_id).toBe('.m.rule.suppress_notices');
    expect(r.notify).toBe(false);
  });

  it('the display name in the body highlights (legacy rule), as a whole word', () => {
    const r = evaluate(defaults(), msg('hey alice liddell, lunch?'), ctx());
    expect(r.rule?.rule_id).toBe('.m.rule.contains_display_name');
    expect(r.highlight).toBe(true);
    // Not at a word boundary: no display-name match (the localpart rule still sees "Alice").
    expect(evaluate(defaults(), msg('Alice Liddellish'), ctx()).rule?.rule_id).toBe('.m.rule.contains_user_name');
    expect(evaluate(defaults(), msg('Mad Hatterish'), ctx({ displayName: 'Mad Hatter' })).highlight).toBe(false);
    expect(evaluate(defaults(), msg('the MAD HATTER!'), ctx({ displayName: 'Mad Hatter' })).highlight).toBe(true);
  });

  it('the localpart in the body highlights (contains_user_name)', () => {
    const r = evaluate(defaults(), msg('ping Alice!'), ctx({ displayName: 'Someone Else' }));
    expect(r.rule?.rule_id).toBe('.m.rule.contains_user_name');
    expect(r.highlight).toBe(true);
  });

  it('m.mentions disables the legacy body rules and drives mentions', () => {
    const noMention = evaluate(defaults(), msg('alice liddell', { 'm.mentions': {} }), ctx());
    expect(noMention.highlight).toBe(false);
    const mention = evaluate(defaults(), msg('hi', { 'm.mentions': { user_ids: [ALICE] } }), ctx());
    expect(mention.rule?.rule_id).toBe('.m.rule.is_user_mention');
    expect(mention.highlight).toBe(true);
  });

  it('room mentions need the sender to have the room notification level', () => {
    const ev = msg('everyone', { 'm.mentions': { room: true } });
    expect(evaluate(defaults(), ev, ctx({ senderPowerLevel: 0 })).highlight).toBe(false);
    const r = evaluate(defaults(), ev, ctx({ senderPowerLevel: 50 }));
    expect(r.rule?.rule_id).toBe('.m.rule.is_room_mention');
    expect(r.highlight).toBe(true);
    // Legacy @room in the body.
    expect(evaluate(defaults(), msg('@room hello'), ctx({ senderPowerLevel: 100 })).rule?.rule_id).toBe('.m.rule.roomnotif');
    expect(evaluate(defaults(), msg('@room hello'), ctx({ senderPowerLevel: 10 })).highlight).toBe(false);
    // A lower notifications.room level lets the sender through.
    expect(evaluate(defaults(), ev, ctx({ senderPowerLevel: 10, notificationLevel: () => 10 })).highlight).toBe(true);
  });

  it('invites for me notify; other member events do not', () => {
    const invite = { type: 'm.room.member', state_key: ALICE, sender: BOB, content: { membership: 'invite' } };
    expect(evaluate(defaults(), invite, ctx()).rule?.rule_id).toBe('.m.rule.invite_for_me');
    const join = { type: 'm.room.member', state_key: BOB, sender: BOB, content: { membership: 'join' } };
    const r = evaluate(defaults(), join, ctx());
    expect(r.rule?.rule_id).toBe('.m.rule.member_event');
    expect(r.notify).toBe(false);
  });

  it('tombstones highlight, reactions, edits and server ACLs do not notify', () => {
    expect(evaluate(defaults(), { type: 'm.room.tombstone', state_key: '', sender: BOB, content: { body: 'moved' } }, ctx()).highlight).toBe(true);
    expect(evaluate(defaults(), { type: 'm.reaction', sender: BOB, content: {} }, ctx()).notify).toBe(false);
    expect(evaluate(defaults(), { type: 'm.room.server_acl', state_key: '', sender: BOB, content: {} }, ctx()).notify).toBe(false);
    const edit = msg('* fixed', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' } });
    expect(evaluate(defaults(), edit, ctx()).rule?.rule_id).toBe('.m.rule.suppress_edits');
  });

  it('calls ring', () => {
    const r = evaluate(defaults(), { type: 'm.call.invite', sender: BOB, content: {} }, ctx());
    expect(r.actions).toContainEqual({ set_tweak: 'sound', value: 'ring' });
  });

  it('the master rule, when enabled, silences everything', () => {
    const rs = buildRuleset(ALICE, noUserRules(), new Map([['override/.m.rule.master', { enabled: true }]]));
    const r = evaluate(rs, msg('alice liddell'), ctx());
    expect(r.rule?.rule_id).toBe('.m.rule.master');
    expect(r.notify).toBe(false);
  });

  it('room and sender rules, and dont_notify stripped', () => {
    const own = noUserRules();
    own.room.push({ rule_id: '!r:example.org', default: false, enabled: true, actions: ['dont_notify'] });
    const r = evaluate(buildRuleset(ALICE, own, new Map()), msg('hi'), ctx());
    expect(r.rule).toEqual({ kind: 'room', rule_id: '!r:example.org' });
    expect(r.actions).toEqual([]);
    const own2 = noUserRules();
    own2.sender.push({ rule_id: BOB, default: false, enabled: false, actions: [] });
    expect(evaluate(buildRuleset(ALICE, own2, new Map()), msg('hi'), ctx()).rule?.rule_id).toBe('.m.rule.message'); // disabled
  });

  it('user content rules with globs', () => {
    const own = noUserRules();
    own.content.push({ rule_id: 'cake', default: false, enabled: true, pattern: 'cake*lie', actions: ['notify', { set_tweak: 'highlight', value: false }] });
    const rs = buildRuleset(ALICE, own, new Map());
    const r = evaluate(rs, msg('the cake is a lie'), ctx());
    expect(r.rule?.rule_id).toBe('cake');
    expect(r.highlight).toBe(false); // highlight tweak with value false
    expect(evaluate(rs, msg('the cake is a lier'), ctx()).rule?.rule_id).toBe('.m.rule.message');
  });
});

describe('DefaultRulesEvaluator (shared evaluation for default rulesets)', () => {
  const users = [
    { userId: ALICE, displayName: 'Alice Liddell' },
    { userId: BOB, displayName: 'Bob' },
    { userId: '@carol:example.org', displayName: undefined },
    { userId: '@dave:example.org', displayName: 'Dave' },
    { userId: '@zoe:example.org', displayName: 'Zoë' },
    { userId: '@sam:example.org', displayName: 'Sam' },
  ];
  const events: Array<Record<string, any>> = [
    msg('hello everyone'),
    msg('hi alice, how are you'),
    msg('ping Bob'),
    msg('carol: lunch?'),
    msg('HI ALICE LIDDELL!'),
    msg('Davenport is not dave-less'),
    msg('zoË here'),
    msg('ſam, with a long s'),
    msg('CAROL'),
    msg('@room look', {}),
    msg('quiet', { msgtype: 'm.notice' }),
    msg('with mentions', { 'm.mentions': { user_ids: ['@dave:example.org'] } }),
    msg('alice but mentions set', { 'm.mentions': {} }),
    msg('room mention', { 'm.mentions': { room: true } }),
    { type: 'm.room.member', room_id: '!r:example.org', sender: BOB, state_key: '@carol:example.org', event_id: '$i', content: { membership: 'invite' } },
    { type: 'm.room.member', room_id: '!r:example.org', sender: BOB, state_key: BOB, event_id: '$j', content: { membership: 'join' } },
    { type: 'm.room.encrypted', room_id: '!r:example.org', sender: BOB, event_id: '$x', content: { ciphertext: 'x' } },
    { type: 'm.reaction', room_id: '!r:example.org', sender: BOB, event_id: '$y', content: {} },
    { type: 'm.room.tombstone', room_id: '!r:example.org', sender: BOB, state_key: '', event_id: '$t', content: {} },
  ];
  for (const memberCount of [2, 5]) {
    for (const senderPowerLevel of [0, 100]) {
      it(`agrees with evaluate for every user (members ${memberCount}, sender level ${senderPowerLevel})`, () => {
        for (const ev of events) {
          const shared = new DefaultRulesEvaluator(ev);
          for (const u of users) {
            const rs = buildRuleset(u.userId, noUserRules(), new Map());
            const c = ctx({ userId: u.userId, displayName: u.displayName, memberCount, senderPowerLevel });
            expect(shared.evaluate(rs, c), `${ev.event_id} ${ev.content?.body} for ${u.userId}`).toEqual(evaluate(rs, ev, c));
            expect(shared.evaluateDefaultMember(rs, c), `fast: ${ev.event_id} ${ev.content?.body} for ${u.userId}`).toEqual(evaluate(rs, ev, c));
          }
        }
      });
      it(`gives the default outcome of an unmentioned member (members ${memberCount}, sender level ${senderPowerLevel})`, () => {
        const nobody = '@nobody:example.org';
        for (const ev of events) {
          const shared = new DefaultRulesEvaluator(ev);
          const rs = buildRuleset(nobody, noUserRules(), new Map());
          const c = ctx({ userId: nobody, displayName: undefined, memberCount, senderPowerLevel });
          expect(shared.defaultOutcome(c), `${ev.event_id} ${ev.content?.body}`).toEqual(evaluate(rs, ev, c));
          // An unmentioned member gets the very same object: no exception row for them.
          expect(shared.evaluateDefaultMember(rs, c)).toBe(shared.defaultOutcome(c));
        }
      });
    }
  }
  it('mayDiffer is false only for members that get the default outcome', () => {
    const names = [...users, { userId: '@k*t:example.org', displayName: 'Ca?rol' }, { userId: '@ben:example.org', displayName: '' }];
    let skipped = 0;
    for (const memberCount of [2, 5]) {
      for (const ev of [...events, msg('hi ben and k*t'), msg('Ca?rol, hi')]) {
        const shared = new DefaultRulesEvaluator(ev);
        for (const u of names) {
          const rs = buildRuleset(u.userId, noUserRules(), new Map());
          const c = ctx({ userId: u.userId, displayName: u.displayName, memberCount });
          if (shared.mayDiffer(c, memberBodyWords(rs, u.displayName))) continue;
          skipped++;
          expect(shared.evaluateDefaultMember(rs, c), `${ev.event_id} ${ev.content?.body} for ${u.userId}`).toBe(shared.defaultOutcome(c));
          expect(evaluate(rs, ev, c)).toEqual(shared.defaultOutcome(c));
        }
      }
    }
    expect(skipped).toBeGreaterThan(50);
    // The members it cannot rule out: named in the body, or names that are not plain ASCII.
    const ev = msg('hi alice, how are you');
    const shared = new DefaultRulesEvaluator(ev);
    const words = (userId: string, displayName?: string) => memberBodyWords(buildRuleset(userId, noUserRules(), new Map()), displayName);
    expect(shared.mayDiffer(ctx(), words(ALICE, 'Alice Liddell'))).toBe(true);
    expect(shared.mayDiffer(ctx(), words('@dave:example.org', 'Dave'))).toBe(false);
    expect(shared.mayDiffer(ctx(), words('@zoe:example.org', 'Zoë'))).toBe(true);
    expect(new DefaultRulesEvaluator(msg('hi alice', { 'm.mentions': {} })).mayDiffer(ctx(), words(ALICE, 'Alice'))).toBe(false);
  });

  it('membersThatMayDiffer finds through the words of the body exactly the members mayDiffer holds for', () => {
    const names = [
      ...users,
      { userId: '@k*t:example.org', displayName: 'Ca?rol' },
      { userId: '@ben:example.org', displayName: '' },
      { userId: '@w:example.org', displayName: '@weird' },
      { userId: '@bang:example.org', displayName: 'bob!' },
      { userId: '@x_1:example.org', displayName: 'x_1' },
      { userId: '@k9:example.org', displayName: '9 lives' },
      { userId: '@sp:example.org', displayName: ' spaced' },
      { userId: '@dv:example.org', displayName: 'dave' },
    ];
    const members = names.map((n) => ({ ...n, words: memberBodyWords(buildRuleset(n.userId, noUserRules(), new Map()), n.displayName) }));
    const index = new MemberWordIndex(members);
    const bodies = [
      ...events,
      msg('hi ben and k*t'),
      msg('Ca?rol, hi'),
      msg('hey @weird'),
      msg('bob! and x_1 and x_10'),
      msg('9 lives, x_1'),
      msg(' spaced out'),
      msg('k*t'),
      msg('dave dave DAVE'),
      msg('davenport, not dave-less'),
      msg(''),
    ];
    let found = 0;
    for (const ev of bodies) {
      const shared = new DefaultRulesEvaluator(ev);
      const got = shared.membersThatMayDiffer(ctx(), index);
      // A subset of those mayDiffer keeps (its substring test also takes a name inside a word), in the members' order.
      const maybe = members.filter((m) => shared.mayDiffer(ctx(), m.words));
      expect(got.every((m) => maybe.includes(m)), `${ev.event_id} ${ev.content?.body}`).toBe(true);
      expect(got).toEqual(maybe.filter((m) => got.includes(m)));
      found += got.length;
      // Whoever is left out gets the default outcome.
      for (const m of members) {
        if (got.includes(m)) continue;
        const rs = buildRuleset(m.userId, noUserRules(), new Map());
        expect(evaluate(rs, ev, ctx({ userId: m.userId, displayName: m.displayName })), `${ev.content?.body} for ${m.userId}`).toEqual(shared.defaultOutcome(ctx()));
      }
    }
    expect(found).toBeGreaterThan(20);
    // A body naming nobody looks only at the members whose names have no leading word (not plain ASCII, or starting with another character).
    expect(index.candidates(['hello', 'everyone']).map((i) => members[i]!.userId)).toEqual(['@zoe:example.org', '@k*t:example.org', '@w:example.org', '@sp:example.org']);
  });

  it('highlights only the mentioned user and notifies the others', () => {
    const ev = msg('hi alice');
    const shared = new DefaultRulesEvaluator(ev);
    const a = shared.evaluate(buildRuleset(ALICE, noUserRules(), new Map()), ctx());
    const d = shared.evaluate(buildRuleset('@dave:example.org', noUserRules(), new Map()), ctx({ userId: '@dave:example.org', displayName: 'Dave' }));
    expect(a.highlight).toBe(true);
    expect(d).toMatchObject({ notify: true, highlight: false });
    const fast = new DefaultRulesEvaluator(ev);
    expect(sameOutcome(fast.evaluateDefaultMember(buildRuleset(ALICE, noUserRules(), new Map()), ctx()), fast.defaultOutcome(ctx()))).toBe(false);
    const dave = fast.evaluateDefaultMember(buildRuleset('@dave:example.org', noUserRules(), new Map()), ctx({ userId: '@dave:example.org', displayName: 'Dave' }));
    expect(dave).toBe(fast.defaultOutcome(ctx()));
  });

  it('shares one frozen outcome per rule, and a changed rule gets its own', () => {
    const rs = defaults();
    const a = evaluate(rs, msg('hello'), ctx());
    const b = evaluate(rs, msg('hello again'), ctx());
    expect(b).toBe(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a.actions)).toBe(true);
    // The user changed the actions of .m.rule.message: a new rule object, a new outcome.
    const changed = buildRuleset(ALICE, noUserRules(), new Map([['underride/.m.rule.message', { actions: ['notify', { set_tweak: 'sound', value: 'default' }] }]]));
    const c = evaluate(changed, msg('hello'), ctx());
    expect(c.rule).toEqual({ kind: 'underride', rule_id: '.m.rule.message' });
    expect(c.actions).toEqual(['notify', { set_tweak: 'sound', value: 'default' }]);
    expect(evaluate(rs, msg('hello'), ctx()).actions).toEqual(['notify']);
  });

  it('compares outcomes by notify, highlight and actions', () => {
    const n = { actions: ['notify'], notify: true, highlight: false };
    expect(sameOutcome(n, { ...n, actions: ['notify'] })).toBe(true);
    expect(sameOutcome(n, { ...n, actions: ['notify', { set_tweak: 'sound', value: 'default' }] })).toBe(false);
    expect(sameOutcome(n, { ...n, highlight: true })).toBe(false);
    expect(sameOutcome({ actions: [], notify: false, highlight: false }, { actions: [{ set_tweak: 'sound' }], notify: false, highlight: false })).toBe(true);
    expect(sameOutcome(n, { actions: [], notify: false, highlight: false })).toBe(false);
  });
});

describe('PushRulesService ruleset cache', () => {
  /** A store whose reads wait until released, counting them. */
  function slowStore() {
    const reads: Array<() => void> = [];
    let n = 0;
    const wait = <T>(v: T) => new Promise<T>((res) => reads.push(() => res(v)));
    const store = {
      userRules: () => (n++, wait([])),
      defaultOverrides: () => wait(new Map()),
    } as unknown as PushStore;
    return { store, reads: () => n, release: () => reads.splice(0).forEach((r) => r()) };
  }

  it('reads a user\'s rules once for concurrent callers', async () => {
    const s = slowStore();
    const svc = new PushRulesService(s.store);
    const all = Promise.all([svc.getRuleset(ALICE), svc.getRuleset(ALICE), svc.getRuleset(BOB)]);
    await Promise.resolve();
    s.release();
    const [a1, a2, b] = await all;
    expect(s.reads()).toBe(2);
    expect(a1).toBe(a2);
    expect(b).not.toBe(a1);
    expect(svc.cachedRuleset(ALICE)).toBe(a1);
    expect(svc.isDefaultRuleset(a1)).toBe(true);
  });

  it('does not cache a read that a change overtook', async () => {
    const s = slowStore();
    const svc = new PushRulesService(s.store);
    const first = svc.getRuleset(ALICE);
    await Promise.resolve();
    svc.invalidate(ALICE); // a rule changed while the read was in flight
    s.release();
    await first;
    expect(svc.cachedRuleset(ALICE)).toBeUndefined();
    const again = svc.getRuleset(ALICE);
    await Promise.resolve();
    s.release();
    expect(await again).toBe(svc.cachedRuleset(ALICE));
    expect(s.reads()).toBe(2);
  });
});
