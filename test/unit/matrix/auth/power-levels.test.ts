import { describe, expect, it } from 'vitest';
import {
  canBan,
  canInvite,
  canKick,
  canRedact,
  canSend,
  notificationPowerLevel,
  parsePowerLevelValue,
  requiredPowerLevel,
  userPowerLevel,
} from '../../../../src/matrix/power-levels.js';
import { ALICE, BOB, CAROL, DAVE, newRoom, rv } from './room-builder.js';

function plRoom(v: string, users: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const room = newRoom(v);
  room.create(ALICE);
  room.join(ALICE);
  room.powerLevels(ALICE, { users: { [ALICE]: 100, ...users }, ...extra });
  room.joinRules(ALICE, 'public');
  return room;
}
const pl = (sender: string, content: Record<string, unknown>) => ({ type: 'm.room.power_levels', sender, state_key: '', content });

describe('parsePowerLevelValue', () => {
  it('parses integers, stringy and floaty values (pre-v10)', () => {
    expect(parsePowerLevelValue(50)).toBe(50);
    expect(parsePowerLevelValue('100')).toBe(100);
    expect(parsePowerLevelValue('000100')).toBe(100);
    expect(parsePowerLevelValue(' +100 ')).toBe(100);
    expect(parsePowerLevelValue(' -100 ')).toBe(-100);
    expect(parsePowerLevelValue(50.57)).toBe(50);
    expect(parsePowerLevelValue(5.114698e4)).toBe(51146);
    expect(parsePowerLevelValue('1.5')).toBeUndefined();
    expect(parsePowerLevelValue('abc')).toBeUndefined();
    expect(parsePowerLevelValue('+-1')).toBeUndefined();
    expect(parsePowerLevelValue(null)).toBeUndefined();
    expect(parsePowerLevelValue({})).toBeUndefined();
  });
  it('integer-only mode (v10+)', () => {
    expect(parsePowerLevelValue(50, true)).toBe(50);
    expect(parsePowerLevelValue('50', true)).toBeUndefined();
    expect(parsePowerLevelValue(50.5, true)).toBeUndefined();
  });
});

describe('string power levels: accepted in v9, rejected in v10', () => {
  it('v9 accepts stringy levels and they take effect', () => {
    const room = plRoom('9');
    const ev = room.add(pl(ALICE, { users: { [ALICE]: '100', [BOB]: ' 50 ' }, ban: '50', events: { 'm.room.name': '10' } }));
    expect(ev).toBeDefined();
    room.join(BOB);
    expect(room.check({ type: 'm.room.name', sender: BOB, state_key: '', content: {} }).allowed).toBe(true);
    expect(userPowerLevel(room.state, BOB)).toBe(50);
  });

  it('v10 rejects string values anywhere', () => {
    const room = plRoom('10');
    expect(room.check(pl(ALICE, { users: { [ALICE]: '100' } })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100 }, ban: '50' })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100 }, events: { 'm.room.name': '10' } })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100 }, notifications: { room: '10' } })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100 }, events: [] })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100 }, ban: 50 })).allowed).toBe(true);
  });

  it('v9 rejects non-integer strings and bad users keys', () => {
    const room = plRoom('9');
    expect(room.check(pl(ALICE, { users: { [ALICE]: '1.5' } })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { notauser: 1 } })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: [] })).allowed).toBe(false);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100 }, ban: 'abc' })).allowed).toBe(false);
  });

  it('v5 accepts float levels (truncated), v10 rejects them', () => {
    const v5 = plRoom('5');
    v5.add(pl(ALICE, { users: { [ALICE]: 100, [BOB]: 50.57 } }));
    expect(userPowerLevel(v5.state, BOB)).toBe(50);
    expect(plRoom('10').check(pl(ALICE, { users: { [ALICE]: 100, [BOB]: 50.5 } })).allowed).toBe(false);
  });

  it('the first PL event is allowed if well-formed (no previous PL)', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    expect(room.check(pl(ALICE, { users: { [ALICE]: 100, [BOB]: 100 } })).allowed).toBe(true);
  });
});

describe('m.room.power_levels change rules', () => {
  it('cannot raise anyone (incl. self) above own level', () => {
    const room = plRoom('10', { [BOB]: 50 }, { events: { 'm.room.power_levels': 50 } });
    room.join(BOB);
    expect(room.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 51 }, events: { 'm.room.power_levels': 50 } })).allowed).toBe(false);
    expect(room.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 50 }, events: { 'm.room.power_levels': 50 } })).allowed).toBe(true);
    expect(room.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 51 }, events: { 'm.room.power_levels': 50 } })).allowed).toBe(false);
  });

  it("cannot change or remove users at or above own level, but may demote oneself", () => {
    const room = plRoom('10', { [BOB]: 50, [CAROL]: 50, [DAVE]: 10 }, { events: { 'm.room.power_levels': 50 } });
    room.join(BOB);
    const base = { [ALICE]: 100, [BOB]: 50, [CAROL]: 50, [DAVE]: 10 };
    const ev = { 'm.room.power_levels': 50 };
    expect(room.check(pl(BOB, { users: { ...base, [CAROL]: 40 }, events: ev })).allowed).toBe(false);
    const { [CAROL]: _c, ...withoutCarol } = base;
    expect(room.check(pl(BOB, { users: withoutCarol, events: ev })).allowed).toBe(false);
    expect(room.check(pl(BOB, { users: { ...base, [DAVE]: 40 }, events: ev })).allowed).toBe(true);
    expect(room.check(pl(BOB, { users: { ...base, [BOB]: 20 }, events: ev })).allowed).toBe(true);
    expect(room.check(pl(BOB, { users: { ...base, [ALICE]: 0 }, events: ev })).allowed).toBe(false);
  });

  it('top-level levels: old and new value must not exceed the sender', () => {
    const room = plRoom('10', { [BOB]: 50 }, { events: { 'm.room.power_levels': 50 }, ban: 60, kick: 40 });
    room.join(BOB);
    const u = { [ALICE]: 100, [BOB]: 50 };
    const ev = { 'm.room.power_levels': 50 };
    expect(room.check(pl(BOB, { users: u, events: ev, ban: 50, kick: 40 })).allowed).toBe(false); // old 60 > 50
    expect(room.check(pl(BOB, { users: u, events: ev, ban: 60, kick: 51 })).allowed).toBe(false); // new 51 > 50
    expect(room.check(pl(BOB, { users: u, events: ev, ban: 60, kick: 50 })).allowed).toBe(true);
    expect(room.check(pl(BOB, { users: u, events: ev, ban: 60 })).allowed).toBe(true); // removing kick 40
    expect(room.check(pl(BOB, { users: u, events: ev, kick: 40 })).allowed).toBe(false); // removing ban 60
    expect(room.check(pl(BOB, { users: u, events: ev, ban: 60, kick: 40, invite: 51 })).allowed).toBe(false); // adding
  });

  it('events entries: old and new value must not exceed the sender', () => {
    const room = plRoom('10', { [BOB]: 50 }, { events: { 'm.room.power_levels': 50, 'm.room.tombstone': 100 } });
    room.join(BOB);
    const u = { [ALICE]: 100, [BOB]: 50 };
    expect(room.check(pl(BOB, { users: u, events: { 'm.room.power_levels': 50 } })).allowed).toBe(false); // removing 100
    expect(room.check(pl(BOB, { users: u, events: { 'm.room.power_levels': 50, 'm.room.tombstone': 100, x: 51 } })).allowed).toBe(false);
    expect(room.check(pl(BOB, { users: u, events: { 'm.room.power_levels': 50, 'm.room.tombstone': 100, x: 50 } })).allowed).toBe(true);
  });

  it('notifications: checked from v6, not in v5', () => {
    for (const [v, expected] of [['5', true], ['6', false]] as const) {
      const room = plRoom(v, { [BOB]: 50 }, { events: { 'm.room.power_levels': 50 }, notifications: { room: 100 } });
      room.join(BOB);
      const r = room.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.power_levels': 50 }, notifications: { room: 10 } }));
      expect(r.allowed, `v${v}`).toBe(expected);
    }
  });

  it('same value written as string and integer is not a change (v9)', () => {
    const room = plRoom('9', { [BOB]: 50 }, { events: { 'm.room.power_levels': 50 }, ban: 100 });
    room.join(BOB);
    expect(room.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.power_levels': 50 }, ban: '100' })).allowed).toBe(true);
  });

  it('needs the level for m.room.power_levels itself', () => {
    const room = plRoom('10', { [BOB]: 50 });
    room.join(BOB);
    // state_default 50 applies; BOB has 50 so allowed; with events override 100, not.
    const room2 = plRoom('10', { [BOB]: 50 }, { events: { 'm.room.power_levels': 100 } });
    room2.join(BOB);
    expect(room2.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.power_levels': 100 } })).allowed).toBe(false);
    expect(room.check(pl(BOB, { users: { [ALICE]: 100, [BOB]: 50 } })).allowed).toBe(true);
  });
});

describe('power-level helpers', () => {
  it('read levels with defaults', () => {
    const room = plRoom('10', { [BOB]: 50 }, { kick: 40, events: { 'm.room.name': 30 }, notifications: { room: 20 } });
    const s = room.state;
    expect(userPowerLevel(s, ALICE)).toBe(100);
    expect(userPowerLevel(s, CAROL)).toBe(0);
    expect(requiredPowerLevel(s, 'm.room.name', true)).toBe(30);
    expect(requiredPowerLevel(s, 'm.room.topic', true)).toBe(50);
    expect(requiredPowerLevel(s, 'm.room.message', false)).toBe(0);
    expect(notificationPowerLevel(s, 'room')).toBe(20);
    expect(canSend(s, BOB, 'm.room.topic', true)).toBe(true);
    expect(canSend(s, CAROL, 'm.room.topic', true)).toBe(false);
    expect(canInvite(s, CAROL)).toBe(true);
    expect(canKick(s, BOB, CAROL)).toBe(true);
    expect(canKick(s, BOB, ALICE)).toBe(false);
    expect(canBan(s, BOB, CAROL)).toBe(true);
    expect(canBan(s, CAROL, DAVE)).toBe(false);
    expect(canRedact(s, CAROL, CAROL)).toBe(true);
    expect(canRedact(s, CAROL, BOB)).toBe(false);
    expect(canRedact(s, BOB, CAROL)).toBe(true);
  });

  it('without a PL event: creator 100 (v11 by sender, v10 by content.creator)', () => {
    const v11 = newRoom('11');
    v11.create(ALICE);
    expect(userPowerLevel(v11.state, ALICE, rv('11'))).toBe(100);
    const v10 = newRoom('10');
    v10.add({ type: 'm.room.create', sender: ALICE, state_key: '', content: { creator: DAVE }, prev: [] });
    expect(userPowerLevel(v10.state, DAVE, rv('10'))).toBe(100);
    expect(userPowerLevel(v10.state, ALICE, rv('10'))).toBe(0);
    expect(notificationPowerLevel(v10.state, 'room')).toBe(50);
  });
});
