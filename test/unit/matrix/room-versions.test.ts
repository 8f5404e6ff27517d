import { describe, expect, it } from 'vitest';
import { DEFAULT_ROOM_VERSION, getRoomVersion, ROOM_VERSIONS, roomVersionsCapability } from '../../../src/matrix/room-versions.js';

const ids = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'];
const v = (id: string) => getRoomVersion(id)!;
const since = (flag: keyof ReturnType<typeof v>, first: number) =>
  ids.forEach((id) => expect(v(id)[flag], `${String(flag)} in v${id}`).toBe(Number(id) >= first));

describe('room versions table', () => {
  it('has every version 1-11, all stable, default 10', () => {
    expect([...ROOM_VERSIONS.keys()]).toEqual(ids);
    for (const id of ids) expect(v(id).stable).toBe(true);
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
  });
  it('capability lists all versions', () => {
    const cap = roomVersionsCapability();
    expect(cap.default).toBe('10');
    expect(Object.keys(cap.available)).toEqual(ids);
    expect(new Set(Object.values(cap.available))).toEqual(new Set(['stable']));
  });
});
