import { describe, expect, it } from 'vitest';
import {
  authEventsSelection,
  authStateFromEvents,
  checkAuth,
  checkAuthEventsList,
} from '../../../../src/matrix/auth-rules.js';
import { ALICE, BOB, CAROL, newRoom, rv } from './room-builder.js';

const pairs = (xs: { type: string; stateKey: string }[]) => xs.map((x) => `${x.type}|${x.stateKey}`);

describe('authEventsSelection', () => {
  it('create has none', () => {
    expect(authEventsSelection('m.room.create', '', ALICE, {}, rv('10'))).toEqual([]);
  });
  it('message: create, PL, sender member', () => {
    expect(pairs(authEventsSelection('m.room.message', undefined, BOB, {}, rv('10')))).toEqual([
      'm.room.create|',
      'm.room.power_levels|',
      `m.room.member|${BOB}`,
    ]);
  });
  it('join: target member + join rules; restricted authoriser from v8 only', () => {
    const content = { membership: 'join', join_authorised_via_users_server: ALICE };
    expect(pairs(authEventsSelection('m.room.member', BOB, BOB, content, rv('8')))).toEqual([
      'm.room.create|',
      'm.room.power_levels|',
      `m.room.member|${BOB}`,
      'm.room.join_rules|',
      `m.room.member|${ALICE}`,
    ]);
    expect(pairs(authEventsSelection('m.room.member', BOB, BOB, content, rv('7')))).not.toContain(`m.room.member|${ALICE}`);
  });
  it('invite with third_party_invite: the token event; leave/ban: no join rules', () => {
    const tpi = { membership: 'invite', third_party_invite: { signed: { mxid: CAROL, token: 'tok' } } };
    expect(pairs(authEventsSelection('m.room.member', CAROL, BOB, tpi, rv('10')))).toEqual([
      'm.room.create|',
      'm.room.power_levels|',
      `m.room.member|${BOB}`,
      `m.room.member|${CAROL}`,
      'm.room.join_rules|',
      'm.room.third_party_invite|tok',
    ]);
    expect(pairs(authEventsSelection('m.room.member', CAROL, BOB, { membership: 'ban' }, rv('10')))).not.toContain('m.room.join_rules|');
    expect(pairs(authEventsSelection('m.room.member', BOB, BOB, { membership: 'knock' }, rv('10')))).toContain('m.room.join_rules|');
  });
});

describe('checkAuthEventsList', () => {
  it('accepts the builder-selected auth events and rejects duplicates/extras/rejected/missing create/other room', () => {
    const room = newRoom('10').standard('public');
    const ev = room.make(room.member(BOB, BOB, 'join'));
    const auth = ev.auth_events.map((id) => room.store.events.get(id as string)!);
    expect(checkAuthEventsList(ev, auth, rv('10'))).toEqual({ allowed: true });
    expect(checkAuthAgainst(ev, auth)).toBe(true);

    const create = auth.find((e) => e.type === 'm.room.create')!;
    const pl = auth.find((e) => e.type === 'm.room.power_levels')!;
    expect(checkAuthEventsList(ev, [...auth, { ...pl, event_id: '$dup:a.example' }], rv('10')).allowed).toBe(false);
    const topic = room.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 't' } });
    expect(checkAuthEventsList(ev, [...auth, topic], rv('10'))).toMatchObject({ allowed: false, reason: expect.stringMatching(/selection/) });
    expect(checkAuthEventsList(ev, auth, rv('10'), (id) => id === pl.event_id).allowed).toBe(false);
    expect(checkAuthEventsList(ev, auth.filter((e) => e !== create), rv('10')).allowed).toBe(false);
    expect(checkAuthEventsList(ev, auth.map((e) => (e === pl ? { ...e, room_id: '!x:a.example' } : e)), rv('10')).allowed).toBe(false);
  });

  function checkAuthAgainst(ev: Parameters<typeof checkAuth>[0], auth: Parameters<typeof authStateFromEvents>[0]) {
    return checkAuth(ev, authStateFromEvents(auth), rv('10')).allowed;
  }
});
