/**
 * State resolution, version 2 (room versions 2–11; rooms/fragments/v2-state-res)
 * and its iteration v2.1 (room version 12, rooms/v12 "State resolution"):
 *  - the full conflicted set also holds the *conflicted state subgraph*
 *    (every event on an auth_events path between two conflicted events);
 *  - the iterative auth checks of step 2 start from an empty state map
 *    instead of the unconflicted state map.
 * In v12 rooms the create event is in no event's auth_events: the rules find
 * it through the room id, so `fetchEvent` must also return it.
 *
 * Synchronous: the caller provides `fetchEvent`, an in-memory lookup that must
 * be able to return every event in the state sets and in their auth chains
 * (storage loads them first). Events it cannot return are left out of the
 * conflicted sets (and their auth chains are cut there); with a complete
 * lookup this never happens.
 *
 * Optional helpers:
 *  - `authChainOf(id)`: the full auth chain of an event (ids, excluding the
 *    event itself), e.g. from a stored auth-chain index; otherwise walked
 *    through `auth_events` via fetchEvent and memoised for this call.
 *  - `isRejected(id)`: whether an event was rejected; rejected auth events
 *    are never used as fallback auth state in the iterative auth checks.
 */
import { checkAuth } from './auth-rules.js';
import { authRuleStateKeys } from './auth-rules/selection.js';
import { CREATE_KEY, POWER_LEVELS_KEY, userPowerLevel } from './power-levels.js';
import { createEventIdFromRoomId } from './room-ids.js';
import type { RoomVersion } from './room-versions.js';
import { authEventIds, stateKey, type RoomEvent, type StateIds, type StateMap } from './types.js';

export type FetchEvent = (eventId: string) => RoomEvent | undefined;

export interface StateResOptions {
  authChainOf?: (eventId: string) => Iterable<string>;
  isRejected?: (eventId: string) => boolean;
}

/** Splits state sets into the unconflicted map and the conflicted set of ids. */
export function splitConflicts(stateSets: readonly StateIds[]): { unconflicted: StateIds; conflicted: Set<string> } {
  const unconflicted: StateIds = new Map();
  const conflicted = new Set<string>();
  const n = stateSets.length;
  const first = stateSets[0]!;
  // Keys in order of first appearance (the first set's, then each next set's new ones).
  for (const [k, id] of first) {
    let same = true;
    for (let i = 1; i < n && same; i++) if (stateSets[i]!.get(k) !== id) same = false;
    if (same) unconflicted.set(k, id);
    else for (const s of stateSets) addIfSet(conflicted, s.get(k));
  }
  for (let i = 1; i < n; i++) {
    for (const k of stateSets[i]!.keys()) {
      let seen = false;
      for (let j = 0; j < i && !seen; j++) seen = stateSets[j]!.has(k);
      // Missing from the first set: a conflict.
      if (!seen) for (const s of stateSets) addIfSet(conflicted, s.get(k));
    }
  }
  return { unconflicted, conflicted };
}

function addIfSet(set: Set<string>, id: string | undefined): void {
  if (id !== undefined) set.add(id);
}

/**
 * Auth-graph lookups for one resolution: each event's auth event ids
 * (memoised: the same events are visited many times), full auth chains
 * (memoised per event) and unions of chains (one traversal, no per-event sets).
 */
export class AuthChains {
  private readonly memo = new Map<string, Set<string>>();
  private readonly parentsMemo = new Map<string, readonly string[]>();

  constructor(
    private readonly fetchEvent: FetchEvent,
    private readonly external?: (eventId: string) => Iterable<string>,
  ) {}

  /** The ids of the event's auth_events (none when it cannot be fetched). */
  parents(id: string): readonly string[] {
    let p = this.parentsMemo.get(id);
    if (p === undefined) {
      const ev = this.fetchEvent(id);
      p = ev ? authEventIds(ev) : [];
      this.parentsMemo.set(id, p);
    }
    return p;
  }

  /** All events reachable through auth_events from `id` (not including `id`). */
  of(id: string): Set<string> {
    const hit = this.memo.get(id);
    if (hit) return hit;
    if (this.external) {
      const s = new Set(this.external(id));
      this.memo.set(id, s);
      return s;
    }
    // Post-order DFS: compute children's chains before the parent's.
    const stack: Array<{ id: string; expanded: boolean }> = [{ id, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (this.memo.has(top.id)) {
        stack.pop();
        continue;
      }
      const parents = this.parents(top.id);
      if (!top.expanded) {
        top.expanded = true;
        for (const p of parents) if (!this.memo.has(p)) stack.push({ id: p, expanded: false });
        continue;
      }
      stack.pop();
      const chain = new Set<string>();
      for (const p of parents) {
        chain.add(p);
        for (const x of this.memo.get(p) ?? []) chain.add(x);
      }
      this.memo.set(top.id, chain);
    }
    return this.memo.get(id)!;
  }

  /** The union of the auth chains of `ids` (what `of` gives for each, merged). */
  union(ids: Iterable<string>): Set<string> {
    const out = new Set<string>();
    if (this.external) {
      for (const id of ids) for (const a of this.of(id)) out.add(a);
      return out;
    }
    // Everything reachable through at least one auth_events edge.
    const stack: string[] = [];
    for (const id of ids) {
      for (const p of this.parents(id)) {
        if (!out.has(p)) {
          out.add(p);
          stack.push(p);
        }
      }
    }
    while (stack.length > 0) {
      for (const p of this.parents(stack.pop()!)) {
        if (!out.has(p)) {
          out.add(p);
          stack.push(p);
        }
      }
    }
    return out;
  }
}

/** Power events: PL, join rules, and kicks/bans of someone else. */
export function isPowerEvent(ev: RoomEvent): boolean {
  if (typeof ev.state_key !== 'string') return false;
  if (ev.type === 'm.room.power_levels' || ev.type === 'm.room.join_rules') return true;
  if (ev.type === 'm.room.member') {
    const m = ev.content?.membership;
    return (m === 'leave' || m === 'ban') && ev.sender !== ev.state_key;
  }
  return false;
}

/** Compares event ids by code unit (byte order for the ASCII ids Matrix uses). */
function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tsOf(ev: RoomEvent): number {
  return typeof ev.origin_server_ts === 'number' ? ev.origin_server_ts : 0;
}

/** Minimal binary heap for Kahn's algorithm. */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

class Resolver {
  readonly chains: AuthChains;
  private readonly powerMemo = new Map<string, number>();
  private readonly keyMemo = new Map<string, string>();

  constructor(
    readonly rv: RoomVersion,
    readonly fetchEvent: FetchEvent,
    readonly opts: StateResOptions,
  ) {
    this.chains = new AuthChains(fetchEvent, opts.authChainOf);
  }

  /**
   * The event's auth events (not rejected ones) as a state map; in v12 rooms
   * plus the create event the room id names.
   */
  authEventState(ev: RoomEvent): StateMap {
    const m: StateMap = new Map();
    if (this.rv.roomIdFromCreateEvent && ev.type !== 'm.room.create' && typeof ev.room_id === 'string') {
      const id = createEventIdFromRoomId(ev.room_id);
      const create = this.opts.isRejected?.(id) ? undefined : this.fetchEvent(id);
      if (create && create.type === 'm.room.create') m.set(CREATE_KEY, create);
    }
    for (const id of this.chains.parents(ev.event_id)) {
      if (this.opts.isRejected?.(id)) continue;
      const a = this.fetchEvent(id);
      if (a && typeof a.state_key === 'string') m.set(stateKey(a.type, a.state_key), a);
    }
    return m;
  }

  /** The state key of a (state) event, memoised by event id. */
  private keyOf(a: RoomEvent & { state_key: string }): string {
    let k = this.keyMemo.get(a.event_id);
    if (k === undefined) this.keyMemo.set(a.event_id, (k = stateKey(a.type, a.state_key)));
    return k;
  }

  /**
   * `authEventState(ev).get(k)` without building the map: the last usable
   * auth event with key k (later ones overwrite earlier ones there), else
   * (v12) the create event the room id names.
   */
  authEventFor(ev: RoomEvent, k: string): RoomEvent | undefined {
    const parents = this.chains.parents(ev.event_id);
    for (let i = parents.length - 1; i >= 0; i--) {
      const id = parents[i]!;
      if (this.opts.isRejected?.(id)) continue;
      const a = this.fetchEvent(id);
      if (a && typeof a.state_key === 'string' && this.keyOf(a as RoomEvent & { state_key: string }) === k) return a;
    }
    if (k === CREATE_KEY && this.rv.roomIdFromCreateEvent && ev.type !== 'm.room.create' && typeof ev.room_id === 'string') {
      const id = createEventIdFromRoomId(ev.room_id);
      const create = this.opts.isRejected?.(id) ? undefined : this.fetchEvent(id);
      if (create && create.type === 'm.room.create') return create;
    }
    return undefined;
  }

  /** Sender's power level according to the event's own auth events. */
  senderPower(ev: RoomEvent): number {
    let p = this.powerMemo.get(ev.event_id);
    if (p === undefined) {
      p = userPowerLevel(this.authEventState(ev), ev.sender, this.rv);
      this.powerMemo.set(ev.event_id, p);
    }
    return p;
  }

  /** Reverse topological power ordering of `events` (earliest first). */
  reverseTopologicalPowerSort(events: RoomEvent[]): RoomEvent[] {
    const inSet = new Map(events.map((e) => [e.event_id, e]));
    const indegree = new Map<string, number>();
    const children = new Map<string, string[]>();
    for (const e of events) {
      let n = 0;
      // Edges from every ancestor in the set (transitively, so that events of
      // the set linked only through events outside it stay ordered).
      for (const a of this.chains.of(e.event_id)) {
        if (!inSet.has(a)) continue;
        n++;
        let c = children.get(a);
        if (!c) children.set(a, (c = []));
        c.push(e.event_id);
      }
      indegree.set(e.event_id, n);
    }
    const less = (x: RoomEvent, y: RoomEvent): boolean => {
      const px = this.senderPower(x);
      const py = this.senderPower(y);
      if (px !== py) return px > py;
      const tx = tsOf(x);
      const ty = tsOf(y);
      if (tx !== ty) return tx < ty;
      return x.event_id < y.event_id;
    };
    const heap = new Heap<RoomEvent>(less);
    for (const e of events) if (indegree.get(e.event_id) === 0) heap.push(e);
    const out: RoomEvent[] = [];
    while (heap.size > 0) {
      const e = heap.pop()!;
      out.push(e);
      for (const c of children.get(e.event_id) ?? []) {
        const d = indegree.get(c)! - 1;
        indegree.set(c, d);
        if (d === 0) heap.push(inSet.get(c)!);
      }
    }
    return out; // auth DAGs are acyclic; a cycle would leave events out.
  }

  /** The PL event among an event's auth events, if any. */
  private plParent(ev: RoomEvent): RoomEvent | undefined {
    for (const id of this.chains.parents(ev.event_id)) {
      const a = this.fetchEvent(id);
      if (a && a.type === 'm.room.power_levels' && a.state_key === '') return a;
    }
    return undefined;
  }

  /** Mainline ordering based on the power-levels event `p0` (may be undefined). */
  mainlineSort(events: RoomEvent[], p0: RoomEvent | undefined): RoomEvent[] {
    const mainlineIdx = new Map<string, number>();
    for (let p = p0, i = 0; p && !mainlineIdx.has(p.event_id); p = this.plParent(p), i++) {
      mainlineIdx.set(p.event_id, i);
    }
    const memo = new Map<string, number>(); // PL id -> position
    const positionFrom = (start: RoomEvent | undefined): number => {
      const path: string[] = [];
      let pos = Infinity;
      for (let p = start; p; p = this.plParent(p)) {
        const idx = mainlineIdx.get(p.event_id);
        if (idx !== undefined) {
          pos = idx;
          break;
        }
        const m = memo.get(p.event_id);
        if (m !== undefined) {
          pos = m;
          break;
        }
        if (path.includes(p.event_id)) break; // defensive: malformed cycle
        path.push(p.event_id);
      }
      for (const id of path) memo.set(id, pos);
      return pos;
    };
    // Sort keys computed once per event, not at every comparison.
    const keyed = events.map((e) => ({ e, pos: positionFrom(this.plParent(e)), ts: tsOf(e), id: e.event_id }));
    keyed.sort((x, y) => {
      if (x.pos !== y.pos) return x.pos > y.pos ? -1 : 1;
      if (x.ts !== y.ts) return x.ts - y.ts;
      return cmpStr(x.id, y.id);
    });
    return keyed.map((k) => k.e);
  }

  /** Iterative auth checks: apply each event that passes auth against `state` (mutated). */
  iterativeAuthChecks(state: StateIds, events: RoomEvent[]): void {
    for (const ev of events) {
      if (typeof ev.state_key !== 'string') continue;
      // The event's own auth events fill what the state lacks.
      const authState: StateMap = new Map();
      for (const k of authRuleStateKeys(ev, this.rv)) {
        const id = state.get(k);
        const chosen = (id !== undefined ? this.fetchEvent(id) : undefined) ?? this.authEventFor(ev, k);
        if (chosen) authState.set(k, chosen);
      }
      if (checkAuth(ev, authState, this.rv).allowed) state.set(stateKey(ev.type, ev.state_key), ev.event_id);
    }
  }
}

export function resolveStateV2(
  roomVersion: RoomVersion,
  stateSets: readonly StateIds[],
  fetchEvent: FetchEvent,
  options: StateResOptions = {},
): StateIds {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);

  const { unconflicted, conflicted } = splitConflicts(stateSets);
  if (conflicted.size === 0) return unconflicted;

  const r = new Resolver(roomVersion, fetchEvent, options);

  // Auth difference: ∪ C_i − ∩ C_i over the full auth chains of each state set.
  const fullChains = stateSets.map((s) => r.chains.union(s.values()));
  const full = new Set(conflicted);
  for (const c of fullChains) {
    for (const id of c) {
      if (full.has(id)) continue;
      for (const o of fullChains) {
        if (!o.has(id)) {
          full.add(id);
          break;
        }
      }
    }
  }
  // v2.1: plus the conflicted state subgraph.
  if (roomVersion.stateRes === 'v2.1') for (const id of conflictedSubgraph(conflicted, r.chains)) full.add(id);
  const fullEvents = new Map<string, RoomEvent>();
  for (const id of full) {
    const e = fetchEvent(id);
    if (e) fullEvents.set(id, e);
  }

  // Step 1: power events and their auth chains within the full conflicted set.
  const powerIds = new Set<string>();
  for (const e of fullEvents.values()) {
    if (!isPowerEvent(e)) continue;
    powerIds.add(e.event_id);
    for (const a of r.chains.of(e.event_id)) if (fullEvents.has(a)) powerIds.add(a);
  }
  const powerSorted = r.reverseTopologicalPowerSort([...powerIds].map((id) => fullEvents.get(id)!));

  // Step 2: iterative auth checks from the unconflicted state (v2), from an
  // empty state (v2.1).
  const resolved: StateIds = roomVersion.stateRes === 'v2.1' ? new Map() : new Map(unconflicted);
  r.iterativeAuthChecks(resolved, powerSorted);

  // Step 3–4: the rest, in mainline order of the resolved power levels.
  const rest = [...fullEvents.values()].filter((e) => !powerIds.has(e.event_id));
  const plId = resolved.get(POWER_LEVELS_KEY);
  const sortedRest = r.mainlineSort(rest, plId !== undefined ? fetchEvent(plId) : undefined);
  r.iterativeAuthChecks(resolved, sortedRest);

  // Step 5: the unconflicted state wins.
  for (const [k, id] of unconflicted) resolved.set(k, id);
  return resolved;
}

/**
 * The conflicted state subgraph (v2.1): the events on any auth_events path
 * from one conflicted event to another, endpoints included. An event is on
 * such a path when it is reachable from a conflicted event (in the auth chain
 * of one) and a conflicted event is reachable from it (it is one, or one is
 * in its auth chain).
 */
export function conflictedSubgraph(conflicted: ReadonlySet<string>, chains: AuthChains): Set<string> {
  const out = new Set<string>();
  // Events in the auth chain of some conflicted event.
  const below = chains.union(conflicted);
  // Events with some conflicted event in their auth chain: walk from the
  // conflicted events to the events citing them, within `below` and the
  // conflicted set (a path between two conflicted events stays in there).
  const citedBy = new Map<string, string[]>();
  const link = (x: string): void => {
    for (const p of chains.parents(x)) {
      let c = citedBy.get(p);
      if (!c) citedBy.set(p, (c = []));
      c.push(x);
    }
  };
  for (const x of below) if (!conflicted.has(x)) link(x);
  for (const c of conflicted) link(c);
  const above = new Set<string>();
  const stack: string[] = [...conflicted];
  while (stack.length > 0) {
    for (const x of citedBy.get(stack.pop()!) ?? []) {
      if (!above.has(x)) {
        above.add(x);
        stack.push(x);
      }
    }
  }
  // Endpoints: a conflicted event below another, or with another below it.
  for (const c of conflicted) if (below.has(c) || above.has(c)) out.add(c);
  for (const x of below) if (!conflicted.has(x) && above.has(x)) out.add(x);
  return out;
}
