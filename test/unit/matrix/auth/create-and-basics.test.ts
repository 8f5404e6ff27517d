import { describe, expect, it } from 'vitest';
import { checkAuth } from '../../../../src/matrix/auth-rules.js';
import { stateKey } from '../../../../src/matrix/types.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, newRoom, rv } from './room-builder.js';

describe('m.room.create', () => {
  it.each(ALL_VERSIONS)('v%s: a well-formed create event is allowed', (v) => {
    const room = newRoom(v);
    expect(room.check({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: ALICE }, prev: [] })).toEqual({ allowed: true });
  });

  it('rejects prev_events', () => {
    const room = newRoom('10');
    const r = room.check({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: ALICE }, prev: ['$x:a.example'] });
    expect(r).toMatchObject({ allowed: false, reason: expect.stringMatching(/prev_events/) });
  });

  it("rejects a sender from another server than the room id's", () => {
    const room = newRoom('10');
    expect(room.check({ type: 'm.room.create', sender: BOB, state_key: '', content: { creator: BOB }, prev: [] }).allowed).toBe(false);
  });

  it('rejects an unknown room_version in content', () => {
    const room = newRoom('10');
    expect(room.check({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: ALICE, room_version: '99' }, prev: [] }).allowed).toBe(false);
    expect(room.check({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: ALICE, room_version: 9 }, prev: [] }).allowed).toBe(false);
    expect(room.check({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: ALICE, room_version: '9' }, prev: [] }).allowed).toBe(true);
  });

  it('v1–v10 require content.creator, v11 does not', () => {
    for (const v of ALL_VERSIONS) {
      const room = newRoom(v);
      const r = room.check({ type: 'm.room.create', sender: ALICE, state_key: '', content: {}, prev: [] });
      expect(r.allowed, `v${v}`).toBe(v === '11');
    }
  });
});

describe('creator join and general rules', () => {
  it.each(ALL_VERSIONS)("v%s: the creator's first join right after create is allowed", (v) => {
    const room = newRoom(v);
    room.create(ALICE);
    expect(room.check(room.member(ALICE, ALICE, 'join'))).toEqual({ allowed: true });
  });

  it('someone else cannot join right after create (no join rules = invite)', () => {
    const room = newRoom('10');
    room.create(ALICE);
    expect(room.check(room.member(DAVE, DAVE, 'join')).allowed).toBe(false);
  });

  it('v11: creator is the create sender; content.creator is ignored', () => {
    const room = newRoom('11');
    room.add({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: DAVE }, prev: [] });
    expect(room.check(room.member(DAVE, DAVE, 'join')).allowed).toBe(false);
    expect(room.check(room.member(ALICE, ALICE, 'join')).allowed).toBe(true);
  });

  it('v10: creator is content.creator', () => {
    const room = newRoom('10');
    room.add({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: DAVE }, prev: [] });
    expect(room.check(room.member(DAVE, DAVE, 'join')).allowed).toBe(true);
    expect(room.check(room.member(ALICE, ALICE, 'join')).allowed).toBe(false);
  });

  it('the creator shortcut needs the create event to be the only prev event', () => {
    const room = newRoom('10');
    const create = room.create(ALICE);
    expect(room.check({ ...room.member(ALICE, ALICE, 'join'), prev: [create.event_id, '$other:a.example'] }).allowed).toBe(false);
  });

  it('rejects when there is no create event in the auth state', () => {
    const room = newRoom('10').standard();
    const ev = room.make({ type: 'm.room.message', sender: ALICE, content: { body: 'hi' } });
    const state = new Map(room.state);
    state.delete(stateKey('m.room.create', ''));
    expect(checkAuth(ev, state, rv('10'))).toMatchObject({ allowed: false, reason: expect.stringMatching(/create/) });
  });

  it('rejects when a selected auth event is from another room', () => {
    const room = newRoom('10').standard();
    const ev = room.make({ type: 'm.room.message', sender: ALICE, content: {} });
    const state = new Map(room.state);
    const k = stateKey('m.room.power_levels', '');
    state.set(k, { ...state.get(k)!, room_id: '!other:a.example' });
    expect(checkAuth(ev, state, rv('10')).allowed).toBe(false);
  });

  it('m.federate=false rejects events from other servers, allows local ones', () => {
    const room = newRoom('10');
    room.create(ALICE, { 'm.federate': false });
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100 } });
    room.joinRules(ALICE, 'public');
    expect(room.check(room.member(BOB, BOB, 'join'))).toMatchObject({ allowed: false, reason: expect.stringMatching(/federate/) });
    expect(room.check(room.member(DAVE, DAVE, 'join')).allowed).toBe(true);
  });

  it('non-member events need the sender to be joined', () => {
    const room = newRoom('10').standard();
    expect(room.check({ type: 'm.room.message', sender: BOB, content: { body: 'x' } }).allowed).toBe(false);
    room.join(BOB);
    expect(room.check({ type: 'm.room.message', sender: BOB, content: { body: 'x' } }).allowed).toBe(true);
  });

  it('required power level for state and message events', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100 }, events: { 'm.room.name': 10, 'm.custom': 20 }, state_default: 50, events_default: 5 });
    room.joinRules(ALICE, 'public');
    room.join(BOB);
    // BOB has 0
    expect(room.check({ type: 'm.room.message', sender: BOB, content: {} }).allowed).toBe(false);
    expect(room.check({ type: 'm.room.topic', sender: BOB, state_key: '', content: {} }).allowed).toBe(false);
    room.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 10 }, events: { 'm.room.name': 10, 'm.custom': 20 }, state_default: 50, events_default: 5 });
    expect(room.check({ type: 'm.room.message', sender: BOB, content: {} }).allowed).toBe(true);
    expect(room.check({ type: 'm.room.name', sender: BOB, state_key: '', content: {} }).allowed).toBe(true);
    expect(room.check({ type: 'm.custom', sender: BOB, content: {} }).allowed).toBe(false);
    expect(room.check({ type: 'm.room.topic', sender: BOB, state_key: '', content: {} }).allowed).toBe(false);
  });

  it('without a PL event: creator has 100, others 0; state needs 50', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    room.joinRules(ALICE, 'public');
    room.join(BOB);
    expect(room.check({ type: 'm.room.topic', sender: ALICE, state_key: '', content: {} }).allowed).toBe(true);
    expect(room.check({ type: 'm.room.topic', sender: BOB, state_key: '', content: {} }).allowed).toBe(false);
    expect(room.check({ type: 'm.room.message', sender: BOB, content: {} }).allowed).toBe(true);
  });

  it("a state_key starting with @ must be the sender's own id", () => {
    const room = newRoom('10').standard('public', { [BOB]: 50 });
    room.join(BOB);
    expect(room.check({ type: 'm.custom.state', sender: BOB, state_key: ALICE, content: {} }).allowed).toBe(false);
    expect(room.check({ type: 'm.custom.state', sender: BOB, state_key: BOB, content: {} }).allowed).toBe(true);
    expect(room.check({ type: 'm.custom.state', sender: BOB, state_key: 'x@y', content: {} }).allowed).toBe(true);
  });

  it('m.room.third_party_invite needs the invite level', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100 }, invite: 10, state_default: 0 });
    room.joinRules(ALICE, 'public');
    room.join(BOB);
    const tpi = { type: 'm.room.third_party_invite', state_key: 'tok', content: { public_key: 'x' } };
    expect(room.check({ ...tpi, sender: BOB }).allowed).toBe(false);
    expect(room.check({ ...tpi, sender: ALICE }).allowed).toBe(true);
    // Not joined: rejected even with the level.
    expect(room.check({ ...tpi, sender: CAROL }).allowed).toBe(false);
  });
});

describe('m.room.aliases special case (v1–v5) vs normal rules (v6+)', () => {
  for (const v of ['5', '6']) {
    it(`v${v}`, () => {
      const room = newRoom(v).standard('public');
      // A non-member from b.example sets aliases for b.example.
      const own = room.check({ type: 'm.room.aliases', sender: BOB, state_key: 'b.example', content: { aliases: [] } });
      const other = room.check({ type: 'm.room.aliases', sender: BOB, state_key: 'a.example', content: { aliases: [] } });
      if (v === '5') {
        expect(own.allowed).toBe(true);
        expect(other.allowed).toBe(false);
      } else {
        // v6: ordinary state event — BOB is not joined.
        expect(own.allowed).toBe(false);
        room.join(BOB);
        expect(room.check({ type: 'm.room.aliases', sender: BOB, state_key: 'b.example', content: {} }).allowed).toBe(false); // needs state_default 50
        expect(room.check({ type: 'm.room.aliases', sender: ALICE, state_key: 'b.example', content: {} }).allowed).toBe(true);
      }
    });
  }

  it('v1: aliases without state_key is rejected', () => {
    const room = newRoom('1').standard();
    expect(room.check({ type: 'm.room.aliases', sender: ALICE, content: {} }).allowed).toBe(false);
  });
});

describe('m.room.redaction', () => {
  it('v1/v2: redact level or same event-id domain', () => {
    for (const v of ['1', '2']) {
      const room = newRoom(v).standard('public');
      room.join(BOB);
      const aliceMsg = room.add({ type: 'm.room.message', sender: ALICE, content: {} });
      const bobMsg = room.add({ type: 'm.room.message', sender: BOB, content: {} });
      // BOB (level 0 < redact 50) may redact events whose id is on b.example only.
      expect(room.check({ type: 'm.room.redaction', sender: BOB, redacts: bobMsg.event_id, content: {} }).allowed, `v${v}`).toBe(true);
      expect(room.check({ type: 'm.room.redaction', sender: BOB, redacts: aliceMsg.event_id, content: {} }).allowed, `v${v}`).toBe(false);
      // ALICE has the redact level.
      expect(room.check({ type: 'm.room.redaction', sender: ALICE, redacts: bobMsg.event_id, content: {} }).allowed).toBe(true);
    }
  });

  it('v3+: redactions are authorised like other events (checked when applied)', () => {
    for (const v of ['3', '10', '11']) {
      const room = newRoom(v).standard('public');
      room.join(BOB);
      const aliceMsg = room.add({ type: 'm.room.message', sender: ALICE, content: {} });
      const spec = v === '11'
        ? { type: 'm.room.redaction', sender: BOB, content: { redacts: aliceMsg.event_id } }
        : { type: 'm.room.redaction', sender: BOB, redacts: aliceMsg.event_id, content: {} };
      expect(room.check(spec).allowed, `v${v}`).toBe(true);
    }
  });

  it('v3+: events.m.room.redaction still applies', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100 }, events: { 'm.room.redaction': 10 } });
    room.joinRules(ALICE, 'public');
    room.join(BOB);
    expect(room.check({ type: 'm.room.redaction', sender: BOB, redacts: '$x:a.example', content: {} }).allowed).toBe(false);
  });
});
