/**
 * Room versions 1–12 as a table of behaviours. Code asks a version what it
 * does ("does it allow knocking?") instead of comparing version strings.
 */

export type EventIdFormat = 'v1' | 'v3' | 'v4';
/** `v2.1` is room version 12's iteration of v2 (conflicted state subgraph, empty start). */
export type StateResAlgorithm = 'v1' | 'v2' | 'v2.1';
/** Which redaction rules apply (see redaction.ts). */
export type RedactionRules = 'v1' | 'v6' | 'v8' | 'v9' | 'v11';

export interface RoomVersion {
  id: string;
  stable: boolean;
  /** `$random:server` (v1), base64 reference hash (v3), URL-safe base64 (v4+). */
  eventIdFormat: EventIdFormat;
  stateRes: StateResAlgorithm;
  redaction: RedactionRules;
  /** v5+: signing keys must be valid at the event's origin_server_ts. */
  enforceKeyValidity: boolean;
  /** v1–v5: m.room.aliases has its own auth rule (state_key = sender's server). */
  specialCaseAliasesAuth: boolean;
  /** v6+: events must be strict canonical JSON (integers in range, no floats). */
  strictCanonicalJson: boolean;
  /** v6+: `notifications` keys of power levels are checked like other levels. */
  limitNotificationsPowerLevels: boolean;
  /** v7+: knock membership and the `knock` join rule. */
  knock: boolean;
  /** v8+: `restricted` join rule with `allow` conditions. */
  restrictedJoin: boolean;
  /** v10+: `knock_restricted` join rule. */
  knockRestricted: boolean;
  /** v10+: power level values must be integers (not strings). */
  integerPowerLevels: boolean;
  /** v11+: no `creator` in m.room.create, the sender is the creator. */
  implicitRoomCreator: boolean;
  /** v11+: `redacts` lives in the content of m.room.redaction. */
  redactsInContent: boolean;
  /**
   * v12+: the room id is `!` + the create event's id (its reference hash),
   * with no server part; the create event has no `room_id`, and other events
   * do not list it in their `auth_events` (the room id names it).
   */
  roomIdFromCreateEvent: boolean;
  /**
   * v12+: the room creators (create sender + `content.additional_creators`)
   * have an infinite power level and may not appear in power levels `users`.
   */
  privilegedCreators: boolean;
}

const base: Omit<RoomVersion, 'id'> = {
  stable: true,
  eventIdFormat: 'v1',
  stateRes: 'v1',
  redaction: 'v1',
  enforceKeyValidity: false,
  specialCaseAliasesAuth: true,
  strictCanonicalJson: false,
  limitNotificationsPowerLevels: false,
  knock: false,
  restrictedJoin: false,
  knockRestricted: false,
  integerPowerLevels: false,
  implicitRoomCreator: false,
  redactsInContent: false,
  roomIdFromCreateEvent: false,
  privilegedCreators: false,
};

const v1: RoomVersion = { ...base, id: '1' };
const v2: RoomVersion = { ...v1, id: '2', stateRes: 'v2' };
const v3: RoomVersion = { ...v2, id: '3', eventIdFormat: 'v3' };
const v4: RoomVersion = { ...v3, id: '4', eventIdFormat: 'v4' };
const v5: RoomVersion = { ...v4, id: '5', enforceKeyValidity: true };
const v6: RoomVersion = {
  ...v5,
  id: '6',
  redaction: 'v6',
  specialCaseAliasesAuth: false,
  strictCanonicalJson: true,
  limitNotificationsPowerLevels: true,
};
const v7: RoomVersion = { ...v6, id: '7', knock: true };
const v8: RoomVersion = { ...v7, id: '8', redaction: 'v8', restrictedJoin: true };
const v9: RoomVersion = { ...v8, id: '9', redaction: 'v9' };
const v10: RoomVersion = { ...v9, id: '10', knockRestricted: true, integerPowerLevels: true };
const v11: RoomVersion = {
  ...v10,
  id: '11',
  redaction: 'v11',
  implicitRoomCreator: true,
  redactsInContent: true,
};
// v12: redaction rules unchanged from v11 (create content is kept whole, so
// `additional_creators` survives).
const v12: RoomVersion = {
  ...v11,
  id: '12',
  stateRes: 'v2.1',
  roomIdFromCreateEvent: true,
  privilegedCreators: true,
};

export const ROOM_VERSIONS: ReadonlyMap<string, RoomVersion> = new Map(
  [v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12].map((v) => [v.id, Object.freeze(v)]),
);

export const DEFAULT_ROOM_VERSION = '10';

export function getRoomVersion(id: string): RoomVersion | undefined {
  return ROOM_VERSIONS.get(id);
}

/** The `m.room_versions` capability as clients expect it. */
export function roomVersionsCapability(defaultVersion: string = DEFAULT_ROOM_VERSION): {
  default: string;
  available: Record<string, 'stable' | 'unstable'>;
} {
  const available: Record<string, 'stable' | 'unstable'> = {};
  for (const v of ROOM_VERSIONS.values()) available[v.id] = v.stable ? 'stable' : 'unstable';
  return { default: defaultVersion, available };
}
