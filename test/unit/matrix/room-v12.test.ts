/**
 * Room version 12 (rooms/v12): room ids from the create event, the create
 * event left out of auth_events, room creators with infinite power
 * (additional_creators), state resolution v2.1 and the (unchanged v11)
 * redaction rules.
 */
import { describe, expect, it } from 'vitest';
import {
  authEventsSelection,
  authEventsSelectionKeys,
  authRuleStateKeys,
  checkAuth,
  checkAuthEventsList,
} from '../../../src/matrix/auth-rules.js';
import { signAndHashEvent } from '../../../src/matrix/event-signing.js';
import { isHashRoomId, isValidRoomId, isValidRoomIdOrAlias, parseRoomId } from '../../../src/matrix/identifiers.js';
import { canBan, canKick, roomCreators, userPowerLevel } from '../../../src/matrix/power-levels.js';
import { redactEvent } from '../../../src/matrix/redaction.js';
import {
  createEventIdFromRoomId,
  roomIdForCreateEvent,
  roomIdFromCreateEventId,
  roomIdMatchesCreateEvent,
} from '../../../src/matrix/room-ids.js';
import { resolveState, resolveStateV2 } from '../../../src/matrix/state-res.js';
import { AuthChains, conflictedSubgraph } from '../../../src/matrix/state-res-v2.js';
import { generateSigningKey } from '../../../src/matrix/signing.js';
import { stateKey, type RoomEvent } from '../../../src/matrix/types.js';
import { ALICE, BOB, CAROL, DAVE, EventStore, RoomBuilder, rv } from './auth/room-builder.js';
import { asObject, idAt, rng, shuffledSets } from './state-res/helpers.js';

const V12 = rv('12');
const CREATE_ID = '$' + 'C'.repeat(42) + 'w';
const ROOM12 = roomIdFromCreateEventId(CREATE_ID);

/** A v12 room whose create event (no room_id) has the id the room id names. */
function v12Room(createContent: Record<string, any> = {}, sender = ALICE): RoomBuilder {
  const room = new RoomBuilder(V12, new EventStore(), ROOM12);
  const create = {
    event_id: CREATE_ID,
    sender,
    type: 'm.room.create',
    state_key: '',
    content: { room_version: '12', ...createContent },
    origin_server_ts: 1,
    depth: 1,
    prev_events: [],
    auth_events: [],
  } as unknown as RoomEvent;
  room.add(create);
  return room;
}

/** create + Alice joins + PL (no creator in users) + join rules. */
function standard12(users: Record<string, number> = { [BOB]: 100, [CAROL]: 50 }, joinRule = 'public', createContent = {}): RoomBuilder {
  const room = v12Room(createContent);
  room.join(ALICE);
  room.powerLevels(ALICE, { users });
  room.joinRules(ALICE, joinRule);
  return room;
}

describe('v12 room ids', () => {
  it('the hash form is valid everywhere; the v1–v11 grammar stays valid', () => {
    expect(isValidRoomId(ROOM12)).toBe(true);
    expect(isHashRoomId(ROOM12)).toBe(true);
    expect(isValidRoomIdOrAlias(ROOM12)).toBe(true);
    expect(parseRoomId(ROOM12)).toBeUndefined(); // no domain to parse
    expect(isValidRoomId('!abc:example.org')).toBe(true);
    expect(isHashRoomId('!abc:example.org')).toBe(false);
    for (const bad of ['!', '!short', '!' + 'a'.repeat(42), '!' + 'a'.repeat(44), '!' + '+'.repeat(43), '!' + '/'.repeat(43), '$' + 'a'.repeat(43)]) {
      expect(isValidRoomId(bad), bad).toBe(false);
    }
  });

  it('room id <-> create event id', () => {
    expect(ROOM12).toBe('!' + CREATE_ID.slice(1));
    expect(createEventIdFromRoomId(ROOM12)).toBe(CREATE_ID);
    expect(roomIdMatchesCreateEvent(ROOM12, CREATE_ID)).toBe(true);
    expect(roomIdMatchesCreateEvent('!other:example.org', CREATE_ID)).toBe(false);
    expect(roomIdMatchesCreateEvent(undefined, CREATE_ID)).toBe(false);
  });

  it('roomIdForCreateEvent equals the id of the signed create event', () => {
    const key = generateSigningKey('a1');
    const pdu = {
      type: 'm.room.create',
      state_key: '',
      sender: ALICE,
      content: { room_version: '12', additional_creators: [BOB] },
      origin_server_ts: 1_700_000_000_000,
      depth: 1,
      prev_events: [],
      auth_events: [],
    };
    const predicted = roomIdForCreateEvent(pdu, V12);
    const { pdu: signed, eventId } = signAndHashEvent(pdu, V12, 'a.example', key);
    expect(predicted).toBe(roomIdFromCreateEventId(eventId));
    expect(isHashRoomId(predicted)).toBe(true);
    expect('room_id' in signed).toBe(false);
    // Deterministic, and any change to the event changes the id.
    expect(roomIdForCreateEvent(pdu, V12)).toBe(predicted);
    expect(roomIdForCreateEvent({ ...pdu, origin_server_ts: pdu.origin_server_ts + 1 }, V12)).not.toBe(predicted);
    expect(() => roomIdForCreateEvent(pdu, rv('11'))).toThrow();
  });
});

describe('v12 auth events selection', () => {
  it('never selects the create event; the rules still read it', () => {
    const sel = authEventsSelection('m.room.message', undefined, ALICE, {}, V12).map((p) => p.type);
    expect(sel).not.toContain('m.room.create');
    expect(authEventsSelection('m.room.message', undefined, ALICE, {}, rv('11')).map((p) => p.type)).toContain('m.room.create');
    const room = standard12();
    const msg = room.make({ type: 'm.room.message', sender: ALICE, content: { body: 'hi' } });
    expect(msg.auth_events).not.toContain(CREATE_ID);
    expect(authEventsSelectionKeys(msg, V12)).not.toContain(stateKey('m.room.create', ''));
    expect(authRuleStateKeys(msg, V12)[0]).toBe(stateKey('m.room.create', ''));
    expect(authRuleStateKeys(msg, rv('11'))).toEqual(authEventsSelectionKeys(msg, rv('11')));
  });

  it('auth_events list: the create event is refused, its absence accepted', () => {
    const room = standard12();
    const msg = room.make({ type: 'm.room.message', sender: ALICE, content: { body: 'hi' } });
    const authEvents = msg.auth_events.map((id) => room.store.events.get(id as string)!);
    expect(checkAuthEventsList(msg, authEvents, V12).allowed).toBe(true);
    const withCreate = [...authEvents, room.get('m.room.create')!];
    expect(checkAuthEventsList(msg, withCreate, V12).allowed).toBe(false);
  });
});

describe('v12 auth rules: m.room.create', () => {
  const create = (content: Record<string, any>, extra: Record<string, unknown> = {}) =>
    ({ event_id: CREATE_ID, sender: ALICE, type: 'm.room.create', state_key: '', content: { room_version: '12', ...content }, origin_server_ts: 1, depth: 1, prev_events: [], auth_events: [], ...extra }) as unknown as RoomEvent;

  it('rejects a room_id; allows none', () => {
    expect(checkAuth(create({}), new Map(), V12).allowed).toBe(true);
    expect(checkAuth(create({}, { room_id: ROOM12 }), new Map(), V12).allowed).toBe(false);
  });

  it('additional_creators must be a list of user ids', () => {
    expect(checkAuth(create({ additional_creators: [BOB, CAROL] }), new Map(), V12).allowed).toBe(true);
    expect(checkAuth(create({ additional_creators: [] }), new Map(), V12).allowed).toBe(true);
    for (const bad of ['@bob:b.example', [1], ['bob'], ['@bob'], [null], {}]) {
      expect(checkAuth(create({ additional_creators: bad }), new Map(), V12).allowed, JSON.stringify(bad)).toBe(false);
    }
    // v11 does not look at it.
    const v11 = { ...create({ additional_creators: 'x' }), room_id: '!r:a.example' } as RoomEvent;
    expect(checkAuth(v11, new Map(), rv('11')).allowed).toBe(true);
  });

  it('rule 2: the room id must name the create event', () => {
    const room = standard12();
    const ok = room.make({ type: 'm.room.message', sender: ALICE, content: {} });
    expect(checkAuth(ok, room.state, V12).allowed).toBe(true);
    const elsewhere = { ...ok, room_id: '!' + 'D'.repeat(43) };
    expect(checkAuth(elsewhere, room.state, V12).allowed).toBe(false);
    const noCreate = new Map(room.state);
    noCreate.delete(stateKey('m.room.create', ''));
    expect(checkAuth(ok, noCreate, V12).allowed).toBe(false);
  });
});

describe('v12 room creators', () => {
  it('creators: sender + additional_creators, infinite power; others from users', () => {
    const room = standard12({ [BOB]: 100 }, 'public', { additional_creators: [DAVE] });
    expect([...roomCreators(room.get('m.room.create'), V12)]).toEqual([ALICE, DAVE]);
    expect(roomCreators(room.get('m.room.create'), rv('11')).size).toBe(0);
    expect(userPowerLevel(room.state, ALICE, V12)).toBe(Infinity);
    expect(userPowerLevel(room.state, DAVE, V12)).toBe(Infinity);
    expect(userPowerLevel(room.state, BOB, V12)).toBe(100);
    expect(userPowerLevel(room.state, CAROL, V12)).toBe(0);
  });

  it('without a power levels event: creators infinite, everyone else 0', () => {
    const room = v12Room({ additional_creators: [BOB] });
    room.join(ALICE);
    expect(userPowerLevel(room.state, ALICE, V12)).toBe(Infinity);
    expect(userPowerLevel(room.state, BOB, V12)).toBe(Infinity);
    expect(userPowerLevel(room.state, CAROL, V12)).toBe(0);
  });

  it('the creator joins first, then may do anything', () => {
    const room = standard12();
    room.join(BOB);
    room.join(CAROL);
    expect(room.check({ type: 'm.room.tombstone', sender: ALICE, state_key: '', content: { replacement_room: ROOM12 } }).allowed).toBe(true);
    expect(room.check({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: { [BOB]: 0 }, ban: 1_000_000 } }).allowed).toBe(true);
    expect(room.check(room.member(ALICE, BOB, 'ban')).allowed).toBe(true);
    expect(room.check(room.member(ALICE, BOB, 'leave')).allowed).toBe(true);
  });

  it('rule 10.4: no creator (sender or additional) may be listed in users', () => {
    const room = standard12({ [BOB]: 100 }, 'public', { additional_creators: [DAVE] });
    room.join(BOB);
    const pl = (sender: string, users: Record<string, number>) => ({ type: 'm.room.power_levels', sender, state_key: '', content: { users } });
    expect(room.check(pl(ALICE, { [BOB]: 100, [ALICE]: 100 })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { [BOB]: 100, [DAVE]: 0 })).allowed).toBe(false);
    // A non-creator admin cannot demote a creator either.
    expect(room.check(pl(BOB, { [BOB]: 100, [ALICE]: 0 })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { [BOB]: 50 })).allowed).toBe(true);
    // The first power levels event is checked too.
    const fresh = v12Room();
    fresh.join(ALICE);
    expect(fresh.check(pl(ALICE, { [ALICE]: 100 })).allowed).toBe(false);
    expect(fresh.check(pl(ALICE, {})).allowed).toBe(true);
  });

  it('a non-creator admin cannot kick or ban a creator; a creator can kick or ban admins', () => {
    const room = standard12({ [BOB]: 100 }, 'public', { additional_creators: [DAVE] });
    room.join(BOB);
    room.join(DAVE);
    expect(room.check(room.member(BOB, ALICE, 'leave')).allowed).toBe(false);
    expect(room.check(room.member(BOB, ALICE, 'ban')).allowed).toBe(false);
    expect(canKick(room.state, BOB, ALICE, V12)).toBe(false);
    expect(canBan(room.state, BOB, ALICE, V12)).toBe(false);
    expect(room.check(room.member(ALICE, BOB, 'leave')).allowed).toBe(true);
    expect(canKick(room.state, ALICE, BOB, V12)).toBe(true);
    // Creators cannot kick one another (neither outranks the other).
    expect(room.check(room.member(ALICE, DAVE, 'leave')).allowed).toBe(false);
    expect(room.check(room.member(DAVE, ALICE, 'ban')).allowed).toBe(false);
  });

  it('an admin may still raise others up to its own level, not to a creator level', () => {
    const room = standard12({ [BOB]: 100 });
    room.join(BOB);
    const pl = (users: Record<string, number>) => ({ type: 'm.room.power_levels', sender: BOB, state_key: '', content: { users } });
    expect(room.check(pl({ [BOB]: 100, [CAROL]: 100 })).allowed).toBe(true);
    expect(room.check(pl({ [BOB]: 100, [CAROL]: 101 })).allowed).toBe(false);
  });

  it('a v11 creator listed in users is still an ordinary user (nothing changes before v12)', () => {
    const room = new RoomBuilder(rv('11'));
    room.standard('public', { [BOB]: 100 });
    room.join(BOB);
    expect(userPowerLevel(room.state, ALICE, rv('11'))).toBe(100);
    expect(room.check(room.member(BOB, ALICE, 'leave')).allowed).toBe(false); // 100 is not < 100
    expect(room.check({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: { [ALICE]: 100, [BOB]: 100 } } }).allowed).toBe(true);
  });
});

describe('v12 redaction', () => {
  it('keeps the whole create content (additional_creators) and adds no room_id', () => {
    const create = {
      type: 'm.room.create',
      state_key: '',
      sender: ALICE,
      content: { room_version: '12', additional_creators: [BOB], other: 1 },
      origin_server_ts: 1,
      depth: 1,
      prev_events: [],
      auth_events: [],
      unsigned: { age: 1 },
    };
    const r = redactEvent(create, V12) as Record<string, any>;
    expect(r.content).toEqual(create.content);
    expect('room_id' in r).toBe(false);
    expect('unsigned' in r).toBe(false);
    const pl = { type: 'm.room.power_levels', state_key: '', sender: ALICE, room_id: ROOM12, content: { users: {}, invite: 0, x: 1 } };
    expect((redactEvent(pl, V12) as Record<string, any>).content).toEqual({ users: {}, invite: 0 });
  });
});

describe('state resolution v2.1 (room version 12)', () => {
  it('dispatches v12 to v2.1 and agrees with v2 on an ordinary fork', () => {
    const room = standard12({ [BOB]: 50 });
    room.join(BOB);
    room.join(CAROL);
    const a = room.fork();
    const b = room.fork();
    a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' } });
    b.add({ type: 'm.room.name', sender: BOB, state_key: '', content: { name: 'B' } });
    const sets = [a.stateIds(), b.stateIds()];
    const r = resolveState(V12, sets, room.store.fetch);
    expect(idAt(r, 'm.room.topic')).toBe(a.get('m.room.topic')!.event_id);
    expect(idAt(r, 'm.room.name')).toBe(b.get('m.room.name')!.event_id);
    const rand = rng(7);
    for (let i = 0; i < 10; i++) expect(asObject(resolveState(V12, shuffledSets(sets, rand), room.store.fetch))).toEqual(asObject(r));
  });

  it('creators outrank everyone in the power ordering: the creator wins a PL conflict', () => {
    const room = standard12({ [BOB]: 100 });
    room.join(BOB);
    const a = room.fork();
    const b = room.fork();
    const byAlice = a.add({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: { [BOB]: 0 } }, ts: 9_000 });
    b.add({ type: 'm.room.power_levels', sender: BOB, state_key: '', content: { users: { [BOB]: 100, [CAROL]: 100 } }, ts: 5_000 });
    const r = resolveState(V12, [a.stateIds(), b.stateIds()], room.store.fetch);
    expect(idAt(r, 'm.room.power_levels')).toBe(byAlice.event_id);
  });

  it('step 2 starts from an empty state, not the unconflicted state', () => {
    // Bob (moderator under P1) kicks Carol on a stale branch, citing P1,
    // although P2 (in both branches, so unconflicted) has demoted him.
    // v2 checks the kick against the unconflicted P2 and drops it; v2.1
    // checks it against its own auth events, keeps it, and Carol's old join
    // then fails (invite-only room).
    const build = (version: string) => {
      const v12 = version === '12';
      const room = v12 ? v12Room() : new RoomBuilder(rv(version));
      if (!v12) room.create(ALICE);
      room.join(ALICE);
      const p1 = room.powerLevels(ALICE, { users: v12 ? { [BOB]: 50 } : { [ALICE]: 100, [BOB]: 50 } });
      room.joinRules(ALICE, 'invite');
      room.add(room.member(ALICE, BOB, 'invite'));
      room.join(BOB);
      room.add(room.member(ALICE, CAROL, 'invite'));
      const carolJoin = room.join(CAROL);
      room.powerLevels(ALICE, { users: v12 ? {} : { [ALICE]: 100 } });
      const a = room.fork();
      const kickAuth = [p1.event_id, room.get('m.room.member', BOB)!.event_id, carolJoin.event_id];
      if (!v12) kickAuth.unshift(room.get('m.room.create')!.event_id);
      const kick = a.force({ ...room.member(BOB, CAROL, 'leave'), auth: kickAuth });
      return { room, sets: [a.stateIds(), room.stateIds()], kick, carolJoin };
    };
    const v11 = build('11');
    expect(idAt(resolveStateV2(rv('11'), v11.sets, v11.room.store.fetch), 'm.room.member', CAROL)).toBe(v11.carolJoin.event_id);
    const v12 = build('12');
    expect(idAt(resolveStateV2(V12, v12.sets, v12.room.store.fetch), 'm.room.member', CAROL)).toBe(v12.kick.event_id);
  });

  it('the conflicted state subgraph: events on auth paths between conflicted events', () => {
    // X <- M <- Y (auth_events edges point left), N elsewhere, Z below X.
    const ev = (id: string, auth: string[]) => ({ event_id: id, auth_events: auth }) as unknown as RoomEvent;
    const events = new Map<string, RoomEvent>([
      ['$Z', ev('$Z', [])],
      ['$X', ev('$X', ['$Z'])],
      ['$M', ev('$M', ['$X'])],
      ['$Y', ev('$Y', ['$M'])],
      ['$N', ev('$N', ['$Z'])],
      ['$W', ev('$W', ['$N'])],
    ]);
    const chains = new AuthChains((id) => events.get(id));
    expect([...conflictedSubgraph(new Set(['$X', '$Y']), chains)].sort()).toEqual(['$M', '$X', '$Y']);
    // No path between the conflicted events: empty.
    expect([...conflictedSubgraph(new Set(['$X', '$W']), chains)]).toEqual([]);
    // Paths through several intermediates.
    expect([...conflictedSubgraph(new Set(['$Z', '$Y', '$W']), chains)].sort()).toEqual(['$M', '$N', '$W', '$X', '$Y', '$Z']);
  });

  it('the create event is found through the room id when checking events', () => {
    const room = standard12({ [BOB]: 50 });
    room.join(BOB);
    const a = room.fork();
    const b = room.fork();
    a.add({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: 'invite' } });
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 't' } });
    const r = resolveStateV2(V12, [a.stateIds(), b.stateIds()], room.store.fetch);
    expect(idAt(r, 'm.room.join_rules')).toBe(a.get('m.room.join_rules')!.event_id);
    expect(idAt(r, 'm.room.create')).toBe(CREATE_ID);
    // Without the create event the rules reject every conflicted event.
    const noCreate = (id: string) => (id === CREATE_ID ? undefined : room.store.fetch(id));
    const r2 = resolveStateV2(V12, [a.stateIds(), b.stateIds()], noCreate);
    expect(idAt(r2, 'm.room.join_rules')).toBeUndefined();
    expect(idAt(r2, 'm.room.topic')).toBeUndefined();
  });
});
