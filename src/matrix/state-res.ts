/**
 * State resolution dispatch by room version (`roomVersion.stateRes`).
 * Synchronous; `fetchEvent` must return every event in the state sets and
 * their auth chains from memory (see state-res-v2.ts).
 */
import type { RoomVersion } from './room-versions.js';
import { resolveStateV1 } from './state-res-v1.js';
import { resolveStateV2, type FetchEvent, type StateResOptions } from './state-res-v2.js';
import type { StateIds } from './types.js';

export type { FetchEvent, StateResOptions } from './state-res-v2.js';
export { resolveStateV1 } from './state-res-v1.js';
export { resolveStateV2 } from './state-res-v2.js';

export function resolveState(
  roomVersion: RoomVersion,
  stateSets: readonly StateIds[],
  fetchEvent: FetchEvent,
  options: StateResOptions = {},
): StateIds {
  return roomVersion.stateRes === 'v1'
    ? resolveStateV1(roomVersion, stateSets, fetchEvent)
    : resolveStateV2(roomVersion, stateSets, fetchEvent, options);
}
