import { describe, expect, it } from 'vitest';
import { DEFAULT_ROOM_VERSION, getRoomVersion, ROOM_VERSIONS, roomVersionsCapability } from '../../../src/matrix/room-versions.js';

const ids = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'];
const all = [...ids, '12'];
const v = (id: string) => getRoomVersion(id)!;
const since = (flag: keyof ReturnType<typeof v>, first: number) =>
  ids.forEach((id) => expect(v(id)[flag], `${String(flag)} in v${id}`).toBe(Number(id) >= first));

describe('room versions table', () => {
  it('has every version 1-12, all stable, default 10', () => {
    expect([...ROOM_VERSIONS.keys()]).toEqual(all);
    for (const id of all) expect(v(id).stable).toBe(true);
    expect(DEFAULT_ROOM_VERSION).toBe('10');
    expect(getRoomVersion(DEFAULT_ROOM_VERSION)).toBeDefined();
    expect(getRoomVersion('0')).toBeUndefined();
    expect(getRoomVersion('org.matrix.unknown')).toBeUndefined();
  });
  it('is frozen', () => {
    expect(Object.isFrozen(v('10'))).toBe(true);
  });
  it('event id formats: v1/v2 $x:server, v3 base64, v4+ url-safe', () => {
    expect(ids.map((id) => v(id).eventIdFormat)).toEqual(['v1', 'v1', 'v3', 'v4', 'v4', 'v4', 'v4', 'v4', 'v4', 'v4', 'v4']);
  });
  it('state resolution v1 only in room version 1', () => {
    expect(ids.map((id) => v(id).stateRes)).toEqual(['v1', ...Array(10).fill('v2')]);
  });
  it('redaction rule sets', () => {
    expect(ids.map((id) => v(id).redaction)).toEqual(['v1', 'v1', 'v1', 'v1', 'v1', 'v6', 'v6', 'v8', 'v9', 'v9', 'v11']);
  });
  it('behaviour flags per the room version pages', () => {
    since('enforceKeyValidity', 5);
    since('strictCanonicalJson', 6);
    since('limitNotificationsPowerLevels', 6);
    since('knock', 7);
    since('restrictedJoin', 8);
    since('knockRestricted', 10);
    since('integerPowerLevels', 10);
    since('implicitRoomCreator', 11);
    since('redactsInContent', 11);
    ids.forEach((id) => expect(v(id).specialCaseAliasesAuth).toBe(Number(id) <= 5));
    ids.forEach((id) => expect(v(id).roomIdFromCreateEvent || v(id).privilegedCreators).toBe(false));
  });
  it('v12: v11 plus hash room ids, privileged creators, state res v2.1', () => {
    const { id: _a, stateRes, roomIdFromCreateEvent, privilegedCreators, ...rest12 } = v('12');
    const { id: _b, stateRes: sr11, roomIdFromCreateEvent: r11, privilegedCreators: p11, ...rest11 } = v('11');
    expect(rest12).toEqual(rest11);
    expect([stateRes, roomIdFromCreateEvent, privilegedCreators]).toEqual(['v2.1', true, true]);
    expect([sr11, r11, p11]).toEqual(['v2', false, false]);
    expect(v('12').redaction).toBe('v11');
  });
  it('capability lists all versions', () => {
    const cap = roomVersionsCapability();
    expect(cap.default).toBe('10');
    expect(Object.keys(cap.available)).toEqual(all);
    expect(new Set(Object.values(cap.available))).toEqual(new Set(['stable']));
  });
});
