import { describe, expect, it } from 'vitest';
import { resolveState, resolveStateV2 } from '../../../../src/matrix/state-res.js';
import { isPowerEvent, splitConflicts } from '../../../../src/matrix/state-res-v2.js';
import { stateKey, type StateIds } from '../../../../src/matrix/types.js';
import { ALICE, BOB, CAROL, DAVE, newRoom, rv, type RoomBuilder } from '../auth/room-builder.js';
import { asObject, contentAt, idAt, rng, shuffledSets } from './helpers.js';

const V = rv('10');

function resolve(room: RoomBuilder, sets: StateIds[]): StateIds {
  return resolveStateV2(V, sets, room.store.fetch);
}

/** Resolves in 20 shuffled orders and asserts the results are identical. */
function resolveStable(room: RoomBuilder, sets: StateIds[]): StateIds {
  const first = resolve(room, sets);
  const rand = rng(42);
  for (let i = 0; i < 20; i++) {
    expect(asObject(resolve(room, shuffledSets(sets, rand)))).toEqual(asObject(first));
  }
  return first;
}

function baseRoom(users: Record<string, number> = { [BOB]: 50 }): RoomBuilder {
  const room = newRoom('10').standard('public', users);
  room.join(BOB);
  room.join(CAROL);
  return room;
}

describe('splitConflicts', () => {
  it('keys missing from some sets are conflicted; equal keys are not', () => {
    const a: StateIds = new Map([['k1', '$1'], ['k2', '$2'], ['k3', '$3']]);
    const b: StateIds = new Map([['k1', '$1'], ['k2', '$x']]);
    const { unconflicted, conflicted } = splitConflicts([a, b]);
    expect([...unconflicted]).toEqual([['k1', '$1']]);
    expect([...conflicted].sort()).toEqual(['$2', '$3', '$x']);
  });
});

describe('isPowerEvent', () => {
  it('PL, join rules, kicks and bans; not self-leave or joins', () => {
    const room = baseRoom();
    expect(isPowerEvent(room.get('m.room.power_levels')!)).toBe(true);
    expect(isPowerEvent(room.get('m.room.join_rules')!)).toBe(true);
    expect(isPowerEvent(room.make(room.member(ALICE, CAROL, 'leave')))).toBe(true);
    expect(isPowerEvent(room.make(room.member(ALICE, CAROL, 'ban')))).toBe(true);
    expect(isPowerEvent(room.make(room.member(CAROL, CAROL, 'leave')))).toBe(false);
    expect(isPowerEvent(room.get('m.room.member', BOB)!)).toBe(false);
  });
});

describe('state resolution v2', () => {
  it('trivial inputs: no sets, one set, identical sets', () => {
    const room = baseRoom();
    expect(resolve(room, []).size).toBe(0);
    expect(asObject(resolve(room, [room.stateIds()]))).toEqual(asObject(room.stateIds()));
    expect(asObject(resolve(room, [room.stateIds(), room.stateIds()]))).toEqual(asObject(room.stateIds()));
  });

  it('concurrent ban and join: the ban wins', () => {
    const room = newRoom('10').standard('public');
    const a = room.fork();
    const b = room.fork();
    const ban = a.add(a.member(ALICE, DAVE, 'ban'));
    const join = b.add(b.member(DAVE, DAVE, 'join'));
    b.add({ type: 'm.room.message', sender: DAVE, content: {} });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.member', DAVE)).toBe(ban.event_id);
    expect(idAt(res, 'm.room.member', DAVE)).not.toBe(join.event_id);
  });

  it('concurrent ban and join, join earlier in time: still the ban', () => {
    const room = newRoom('10').standard('public');
    const a = room.fork();
    const b = room.fork();
    b.add({ ...b.member(DAVE, DAVE, 'join'), ts: 10 });
    const ban = a.add({ ...a.member(ALICE, DAVE, 'ban'), ts: 999_999 });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.member', DAVE)).toBe(ban.event_id);
  });

  it('power-level change racing a kick: the demotion wins and the kick is dropped', () => {
    const room = baseRoom({ [BOB]: 50 });
    const carolJoin = room.get('m.room.member', CAROL)!;
    const a = room.fork();
    const b = room.fork();
    const demote = a.powerLevels(ALICE, { users: { [ALICE]: 100 } });
    b.add(b.member(BOB, CAROL, 'leave')); // kick
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.power_levels')).toBe(demote.event_id);
    expect(idAt(res, 'm.room.member', CAROL)).toBe(carolJoin.event_id);
  });

  it('power-level change racing a kick by the admin: both apply', () => {
    const room = baseRoom({ [BOB]: 50 });
    const a = room.fork();
    const b = room.fork();
    const promote = a.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 10 } });
    const kick = b.add(b.member(ALICE, CAROL, 'leave'));
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.power_levels')).toBe(promote.event_id);
    expect(idAt(res, 'm.room.member', CAROL)).toBe(kick.event_id);
  });

  it('mod demoted concurrently loses a PL change made with the old power', () => {
    const room = baseRoom({ [BOB]: 50 });
    // BOB may change PL at level 50.
    room.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.power_levels': 50 } });
    const a = room.fork();
    const b = room.fork();
    const demote = a.powerLevels(ALICE, { users: { [ALICE]: 100 }, events: { 'm.room.power_levels': 50 } });
    b.powerLevels(BOB, { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 50 }, events: { 'm.room.power_levels': 50 } });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.power_levels')).toBe(demote.event_id);
  });

  it('topic race on the same power levels: the later origin_server_ts wins', () => {
    const room = baseRoom({ [BOB]: 50 });
    const a = room.fork();
    const b = room.fork();
    a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' }, ts: 5000 });
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' }, ts: 6000 });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(contentAt(room, res, 'm.room.topic')?.topic).toBe('B');
  });

  it('topic race: mainline order beats timestamps (topic citing the newer PL wins)', () => {
    const room = baseRoom({ [BOB]: 50 });
    const a = room.fork();
    const b = room.fork();
    a.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 10 } });
    a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' }, ts: 5000 });
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' }, ts: 9000 });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(contentAt(room, res, 'm.room.topic')?.topic).toBe('A');
  });

  it('topic race with equal timestamps: event id breaks the tie', () => {
    const room = baseRoom({ [BOB]: 50 });
    const a = room.fork();
    const b = room.fork();
    const t1 = a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' }, ts: 7000 });
    const t2 = b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' }, ts: 7000 });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    const winner = [t1, t2].sort((x, y) => (x.event_id < y.event_id ? -1 : 1))[1]!;
    expect(idAt(res, 'm.room.topic')).toBe(winner.event_id);
  });

  it('a topic by a user demoted in the other fork is dropped', () => {
    const room = baseRoom({ [BOB]: 50 });
    const old = room.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'old' } });
    const a = room.fork();
    const b = room.fork();
    a.powerLevels(ALICE, { users: { [ALICE]: 100 } });
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' }, ts: 99_999 });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.topic')).toBe(old.event_id);
  });

  it('join-rule race: a join made under "public" is dropped once the room became invite-only', () => {
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    const jr = a.joinRules(ALICE, 'invite');
    b.join(DAVE);
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.join_rules')).toBe(jr.event_id);
    expect(idAt(res, 'm.room.member', DAVE)).toBeUndefined();
  });

  it('join-rule race: an invited user keeps the join', () => {
    const room = baseRoom();
    room.add(room.member(ALICE, DAVE, 'invite'));
    const a = room.fork();
    const b = room.fork();
    a.joinRules(ALICE, 'invite');
    const join = b.join(DAVE);
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.member', DAVE)).toBe(join.event_id);
  });

  it('unconflicted state is kept and three-way forks are order independent', () => {
    const room = baseRoom({ [BOB]: 50 });
    const name = room.add({ type: 'm.room.name', sender: ALICE, state_key: '', content: { name: 'n' } });
    const a = room.fork();
    const b = room.fork();
    const c = room.fork();
    a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' } });
    a.add(a.member(ALICE, CAROL, 'ban'));
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' } });
    b.add({ type: 'm.room.message', sender: CAROL, content: {} });
    b.add(b.member(CAROL, CAROL, 'leave'));
    c.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 0 } });
    c.add({ type: 'm.custom', sender: ALICE, state_key: 'x', content: {} });
    const res = resolveStable(room, [a.stateIds(), b.stateIds(), c.stateIds()]);
    expect(idAt(res, 'm.room.name')).toBe(name.event_id);
    expect(contentAt(room, res, 'm.room.member', CAROL)?.membership).toBe('ban');
    expect(contentAt(room, res, 'm.room.topic')?.topic).toBe('A'); // BOB demoted
    expect(idAt(res, 'm.custom', 'x')).toBeDefined();
  });

  it('uses the event auth_events for keys missing from the partial state', () => {
    // A key only present in one fork (DAVE's invite then join) resolves through
    // auth events: DAVE's join needs his invite, which is in the auth difference.
    const room = newRoom('10').standard('invite');
    const a = room.fork();
    const b = room.fork();
    a.add(a.member(ALICE, DAVE, 'invite'));
    const join = a.join(DAVE);
    b.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'b' } });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.member', DAVE)).toBe(join.event_id);
  });

  it('authChainOf and isRejected options are honoured', () => {
    const room = newRoom('10').standard('public');
    const a = room.fork();
    const b = room.fork();
    a.add(a.member(ALICE, DAVE, 'ban'));
    b.join(DAVE);
    const calls: string[] = [];
    const walk = (id: string): string[] => {
      const out = new Set<string>();
      const stack = [id];
      while (stack.length) {
        const ev = room.store.fetch(stack.pop()!);
        for (const p of (ev?.auth_events ?? []) as string[]) {
          if (!out.has(p)) {
            out.add(p);
            stack.push(p);
          }
        }
      }
      return [...out];
    };
    const res = resolveStateV2(V, [a.stateIds(), b.stateIds()], room.store.fetch, {
      authChainOf: (id) => (calls.push(id), walk(id)),
      isRejected: () => false,
    });
    expect(calls.length).toBeGreaterThan(0);
    expect(asObject(res)).toEqual(asObject(resolve(room, [a.stateIds(), b.stateIds()])));
  });

  it('resolveState dispatches v2 for room version 2+', () => {
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' } });
    b.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'B' } });
    const sets = [a.stateIds(), b.stateIds()];
    expect(asObject(resolveState(V, sets, room.store.fetch))).toEqual(asObject(resolve(room, sets)));
    expect(idAt(resolveState(V, sets, room.store.fetch), 'm.room.create')).toBe(room.get('m.room.create')!.event_id);
    expect(stateKey('a', 'b')).toBe('a\u0000b');
  });
});
