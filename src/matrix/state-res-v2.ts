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
  const keys = new Set<string>();
  for (const s of stateSets) for (const k of s.keys()) keys.add(k);
  for (const k of keys) {
    const first = stateSets[0]!.get(k);
    let same = first !== undefined;
    for (let i = 1; i < stateSets.length && same; i++) if (stateSets[i]!.get(k) !== first) same = false;
    if (same) {
      unconflicted.set(k, first!);
    } else {
      for (const s of stateSets) {
        const id = s.get(k);
        if (id !== undefined) conflicted.add(id);
      }
    }
  }
  return { unconflicted, conflicted };
}

/** Memoised auth-chain computation over `auth_events` (iterative, no recursion limits). */
export class AuthChains {
  private readonly memo = new Map<string, Set<string>>();

  constructor(
    private readonly fetchEvent: FetchEvent,
    private readonly external?: (eventId: string) => Iterable<string>,
  ) {}

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
      const ev = this.fetchEvent(top.id);
      const parents = ev ? authEventIds(ev) : [];
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
    for (const id of authEventIds(ev)) {
      if (this.opts.isRejected?.(id)) continue;
      const a = this.fetchEvent(id);
      if (a && typeof a.state_key === 'string') m.set(stateKey(a.type, a.state_key), a);
    }
    return m;
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
    for (const id of authEventIds(ev)) {
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
    const pos = new Map(events.map((e) => [e.event_id, positionFrom(this.plParent(e))]));
    return [...events].sort((x, y) => {
      const px = pos.get(x.event_id)!;
      const py = pos.get(y.event_id)!;
      if (px !== py) return px > py ? -1 : 1;
      const tx = tsOf(x);
      const ty = tsOf(y);
      if (tx !== ty) return tx - ty;
      return cmpStr(x.event_id, y.event_id);
    });
  }

  /** Iterative auth checks: apply each event that passes auth against `state` (mutated). */
  iterativeAuthChecks(state: StateIds, events: RoomEvent[]): void {
    for (const ev of events) {
      if (typeof ev.state_key !== 'string') continue;
      const fallback = this.authEventState(ev);
      const authState: StateMap = new Map();
      for (const k of authRuleStateKeys(ev, this.rv)) {
        const id = state.get(k);
        const e = id !== undefined ? this.fetchEvent(id) : undefined;
        const chosen = e ?? fallback.get(k);
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
  const fullChains = stateSets.map((s) => {
    const c = new Set<string>();
    for (const id of s.values()) for (const a of r.chains.of(id)) c.add(a);
    return c;
  });
  const full = new Set(conflicted);
  for (const c of fullChains) {
    for (const id of c) if (!full.has(id) && !fullChains.every((o) => o.has(id))) full.add(id);
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
  // Whether some conflicted event is in x's auth chain (the smaller side is iterated).
  const reachesConflicted = (x: string): boolean => {
    const chain = chains.of(x);
    if (conflicted.size < chain.size) {
      for (const c of conflicted) if (c !== x && chain.has(c)) return true;
      return false;
    }
    for (const a of chain) if (conflicted.has(a)) return true;
    return false;
  };
  const out = new Set<string>();
  const below = new Set<string>(); // events in the auth chain of some conflicted event
  for (const c of conflicted) for (const a of chains.of(c)) below.add(a);
  for (const c of conflicted) {
    // Endpoints: a conflicted event below another, or with another below it.
    if (below.has(c) || reachesConflicted(c)) out.add(c);
  }
  for (const x of below) if (!conflicted.has(x) && reachesConflicted(x)) out.add(x);
  return out;
}
