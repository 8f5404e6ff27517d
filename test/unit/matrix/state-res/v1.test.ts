import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resolveState, resolveStateV1 } from '../../../../src/matrix/state-res.js';
import type { StateIds } from '../../../../src/matrix/types.js';
import { ALICE, BOB, CAROL, DAVE, newRoom, rv, type RoomBuilder } from '../auth/room-builder.js';
import { asObject, contentAt, idAt, rng, shuffledSets } from './helpers.js';

const V1 = rv('1');
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

function resolveStable(room: RoomBuilder, sets: StateIds[]): StateIds {
  const first = resolveStateV1(V1, sets, room.store.fetch);
  const rand = rng(7);
  for (let i = 0; i < 20; i++) {
    expect(asObject(resolveStateV1(V1, shuffledSets(sets, rand), room.store.fetch))).toEqual(asObject(first));
  }
  return first;
}

function baseRoom(): RoomBuilder {
  const room = newRoom('1').standard('public', { [BOB]: 50 });
  room.join(BOB);
  room.join(CAROL);
  return room;
}

describe('state resolution v1', () => {
  it('keys present in only some states are not conflicts', () => {
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    const t = a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' } });
    b.add({ type: 'm.room.message', sender: ALICE, content: {} });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.topic')).toBe(t.event_id);
  });

  it('power levels: applied from lowest depth while they pass auth', () => {
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    const p1 = a.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 20 } });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.power_levels')).toBe(p1.event_id);
  });

  it('power levels: stops at the first one that fails auth', () => {
    const room = baseRoom();
    const base = room.get('m.room.power_levels')!;
    const a = room.fork();
    const b = room.fork();
    // BOB (50) tries to promote himself: fails against the base PL.
    b.add({ type: 'm.room.message', sender: BOB, content: {} });
    const bad = b.force({ type: 'm.room.power_levels', sender: BOB, state_key: '', content: { users: { [ALICE]: 100, [BOB]: 100 } } });
    a.add({ type: 'm.room.message', sender: ALICE, content: {} });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.power_levels')).toBe(base.event_id);
    expect(idAt(res, 'm.room.power_levels')).not.toBe(bad.event_id);
  });

  it('concurrent ban and join: the ban wins whichever is deeper', () => {
    for (const joinFirst of [true, false]) {
      const room = newRoom('1').standard('public');
      const a = room.fork();
      const b = room.fork();
      if (joinFirst) a.add({ type: 'm.room.message', sender: ALICE, content: {} }); // ban deeper
      else b.add({ type: 'm.room.message', sender: ALICE, content: {} }); // join deeper
      const ban = a.add(a.member(ALICE, DAVE, 'ban'));
      b.join(DAVE);
      const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
      expect(idAt(res, 'm.room.member', DAVE), `joinFirst=${joinFirst}`).toBe(ban.event_id);
    }
  });

  it('other conflicts: highest depth wins, ties by lowest sha1(event_id)', () => {
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' } });
    b.add({ type: 'm.room.message', sender: ALICE, content: {} });
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' } });
    expect(contentAt(room, resolveStable(room, [a.stateIds(), b.stateIds()]), 'm.room.topic')?.topic).toBe('B');

    const c = room.fork();
    const d = room.fork();
    const tc = c.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'C' } });
    const td = d.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'D' } });
    const expected = sha1(tc.event_id) < sha1(td.event_id) ? tc : td;
    expect(idAt(resolveStable(room, [c.stateIds(), d.stateIds()]), 'm.room.topic')).toBe(expected.event_id);
  });

  it('other conflicts: a deeper event that fails auth in R loses', () => {
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    const ta = a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' } });
    a.powerLevels(ALICE, { users: { [ALICE]: 100 } }); // BOB demoted
    b.add({ type: 'm.room.message', sender: BOB, content: {} });
    b.add({ type: 'm.room.message', sender: BOB, content: {} });
    b.add({ type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 'B' } });
    const res = resolveStable(room, [a.stateIds(), b.stateIds()]);
    expect(idAt(res, 'm.room.topic')).toBe(ta.event_id);
  });

  it('resolveState dispatches v1 for room version 1 and differs from v2 on a depth/ts race', () => {
    // Build the same shape in a v1 room and resolve it with both algorithms.
    const room = baseRoom();
    const a = room.fork();
    const b = room.fork();
    const ta = a.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'A' }, ts: 900_000 });
    b.add({ type: 'm.room.message', sender: ALICE, content: {}, ts: 100 });
    b.add({ type: 'm.room.message', sender: ALICE, content: {}, ts: 101 });
    const tb = b.add({ type: 'm.room.topic', sender: ALICE, state_key: '', content: { topic: 'B' }, ts: 102 });
    const sets = [a.stateIds(), b.stateIds()];
    expect(idAt(resolveState(V1, sets, room.store.fetch), 'm.room.topic')).toBe(tb.event_id); // deepest
    expect(idAt(resolveState(rv('2'), sets, room.store.fetch), 'm.room.topic')).toBe(ta.event_id); // latest ts
  });
});
