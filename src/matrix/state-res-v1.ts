/**
 * State resolution for room version 1 (rooms/v1 "State resolution").
 *
 * Known-buggy by design of the spec (state resets); kept for v1 rooms only.
 * Synchronous with an in-memory `fetchEvent`, like v2.
 *
 * Choices where the spec text is open:
 *  - conflicts are resolved per (type, state_key); m.room.member conflicts
 *    are processed in state_key order, "other" conflicts in key order;
 *  - events are checked against R alone (the resolved state so far);
 *  - if no candidate of an "other" conflict passes auth, the first candidate
 *    of the ordering (highest depth, lowest sha1) is kept, so a key never
 *    disappears from the state.
 */
import { createHash } from 'node:crypto';
import { checkAuth } from './auth-rules.js';
import { authEventsSelectionKeys } from './auth-rules/selection.js';
import type { RoomVersion } from './room-versions.js';
import { splitStateKey, type RoomEvent, type StateIds, type StateMap } from './types.js';
import type { FetchEvent } from './state-res-v2.js';

function sha1Hex(s: string): string {
  return createHash('sha1').update(s, 'utf8').digest('hex');
}

function depthOf(ev: RoomEvent): number {
  return typeof ev.depth === 'number' ? ev.depth : 0;
}

export function resolveStateV1(roomVersion: RoomVersion, stateSets: readonly StateIds[], fetchEvent: FetchEvent): StateIds {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);

  // R starts as the union of the states without the conflicting keys. A key
  // present in only some states is not a conflict in v1.
  const resolved: StateIds = new Map();
  const conflicts = new Map<string, Set<string>>();
  for (const s of stateSets) {
    for (const [k, id] of s) {
      const c = conflicts.get(k);
      if (c) c.add(id);
      else conflicts.set(k, new Set([id]));
    }
  }
  for (const [k, ids] of [...conflicts]) {
    if (ids.size === 1) {
      resolved.set(k, [...ids][0]!);
      conflicts.delete(k);
    }
  }
  if (conflicts.size === 0) return resolved;

  const sha = new Map<string, string>();
  const shaOf = (id: string): string => {
    let h = sha.get(id);
    if (h === undefined) sha.set(id, (h = sha1Hex(id)));
    return h;
  };
  const eventsOf = (ids: Set<string>): RoomEvent[] =>
    [...ids].map((id) => fetchEvent(id)).filter((e): e is RoomEvent => e !== undefined);

  const allowedIn = (ev: RoomEvent): boolean => {
    const authState: StateMap = new Map();
    for (const k of authEventsSelectionKeys(ev, roomVersion)) {
      const id = resolved.get(k);
      const e = id !== undefined ? fetchEvent(id) : undefined;
      if (e) authState.set(k, e);
    }
    return checkAuth(ev, authState, roomVersion).allowed;
  };

  // Auth-affecting conflicts: ascending depth, then descending sha1(event_id);
  // take the first, then each next one while it passes auth in R.
  const resolveAuthKey = (k: string): void => {
    const ids = conflicts.get(k);
    if (!ids) return;
    conflicts.delete(k);
    const list = eventsOf(ids).sort((a, b) => {
      const d = depthOf(a) - depthOf(b);
      if (d !== 0) return d;
      const ha = shaOf(a.event_id);
      const hb = shaOf(b.event_id);
      return ha < hb ? 1 : ha > hb ? -1 : 0;
    });
    if (list.length === 0) return;
    resolved.set(k, list[0]!.event_id);
    for (const ev of list.slice(1)) {
      if (!allowedIn(ev)) break;
      resolved.set(k, ev.event_id);
    }
  };

  const keysOfType = (type: string): string[] =>
    [...conflicts.keys()].filter((k) => splitStateKey(k)[0] === type).sort();

  for (const k of keysOfType('m.room.power_levels')) resolveAuthKey(k);
  for (const k of keysOfType('m.room.join_rules')) resolveAuthKey(k);
  for (const k of keysOfType('m.room.member')) resolveAuthKey(k);

  // Everything else: highest depth, lowest sha1(event_id), that passes auth in R.
  for (const k of [...conflicts.keys()].sort()) {
    const list = eventsOf(conflicts.get(k)!).sort((a, b) => {
      const d = depthOf(b) - depthOf(a);
      if (d !== 0) return d;
      const ha = shaOf(a.event_id);
      const hb = shaOf(b.event_id);
      return ha < hb ? -1 : ha > hb ? 1 : 0;
    });
    if (list.length === 0) continue;
    const pick = list.find(allowedIn) ?? list[0]!;
    resolved.set(k, pick.event_id);
  }
  return resolved;
}
