/**
 * Test helper: builds rooms event by event with a linear (or forked) state,
 * checking each event against the auth rules.
 */
import { authEventsSelectionKeys, checkAuth, type AuthResult, type AuthOptions } from '../../../../src/matrix/auth-rules.js';
import { getRoomVersion, type RoomVersion } from '../../../../src/matrix/room-versions.js';
import { stateKey, type RoomEvent, type StateIds, type StateMap } from '../../../../src/matrix/types.js';

export const ALICE = '@alice:a.example';
export const BOB = '@bob:b.example';
export const CAROL = '@carol:c.example';
export const DAVE = '@dave:a.example';
export const ROOM = '!room:a.example';

export function rv(id: string): RoomVersion {
  const v = getRoomVersion(id);
  if (!v) throw new Error(`no room version ${id}`);
  return v;
}

export interface EventSpec {
  type: string;
  sender: string;
  state_key?: string;
  content?: Record<string, any>;
  /** Overrides: prev event ids (default: the branch's last event). */
  prev?: string[];
  /** Overrides: auth event ids (default: the selection from the branch state). */
  auth?: string[];
  ts?: number;
  redacts?: string;
  extra?: Record<string, unknown>;
}

/** Shared event store for all branches of one room. */
export class EventStore {
  readonly events = new Map<string, RoomEvent>();
  counter = 0;
  ts = 1_000;
  fetch = (id: string): RoomEvent | undefined => this.events.get(id);
}

export class RoomBuilder {
  state: StateMap = new Map();
  last: string[] = [];
  depth = 0;

  constructor(
    readonly version: RoomVersion,
    readonly store: EventStore = new EventStore(),
    readonly roomId: string = ROOM,
  ) {}

  /** A new branch sharing the event store, starting from this branch's state. */
  fork(): RoomBuilder {
    const b = new RoomBuilder(this.version, this.store, this.roomId);
    b.state = new Map(this.state);
    b.last = [...this.last];
    b.depth = this.depth;
    return b;
  }

  stateIds(): StateIds {
    return new Map([...this.state].map(([k, e]) => [k, e.event_id]));
  }

  get(type: string, sk = ''): RoomEvent | undefined {
    return this.state.get(stateKey(type, sk));
  }

  /** Builds an event (not applied). */
  make(spec: EventSpec): RoomEvent {
    const n = ++this.store.counter;
    const server = spec.sender.slice(spec.sender.indexOf(':') + 1);
    const ev: RoomEvent = {
      event_id: `$e${n}:${server}`,
      room_id: this.roomId,
      sender: spec.sender,
      type: spec.type,
      content: spec.content ?? {},
      origin_server_ts: spec.ts ?? (this.store.ts += 10),
      depth: this.depth + 1,
      prev_events: spec.prev ?? [...this.last],
      auth_events: [],
      ...(spec.state_key !== undefined ? { state_key: spec.state_key } : {}),
      ...(spec.redacts !== undefined ? { redacts: spec.redacts } : {}),
      ...(spec.extra ?? {}),
    };
    ev.auth_events =
      spec.auth ??
      authEventsSelectionKeys(ev, this.version)
        .map((k) => this.state.get(k)?.event_id)
        .filter((x): x is string => x !== undefined);
    return ev;
  }

  check(spec: EventSpec | RoomEvent, opts?: AuthOptions): AuthResult {
    const ev = 'event_id' in spec ? (spec as RoomEvent) : this.make(spec as EventSpec);
    return checkAuth(ev, this.state, this.version, opts);
  }

  /** Adds an event to the branch without checking it. */
  force(spec: EventSpec | RoomEvent): RoomEvent {
    const ev = 'event_id' in spec ? (spec as RoomEvent) : this.make(spec as EventSpec);
    this.store.events.set(ev.event_id, ev);
    if (typeof ev.state_key === 'string') this.state.set(stateKey(ev.type, ev.state_key), ev);
    this.last = [ev.event_id];
    this.depth = ev.depth;
    return ev;
  }

  /** Builds, checks (must be allowed) and applies an event. */
  add(spec: EventSpec | RoomEvent, opts?: AuthOptions): RoomEvent {
    const ev = 'event_id' in spec ? (spec as RoomEvent) : this.make(spec as EventSpec);
    const r = checkAuth(ev, this.state, this.version, opts);
    if (!r.allowed) throw new Error(`expected ${ev.type}/${ev.state_key ?? ''} by ${ev.sender} to be allowed: ${r.reason}`);
    return this.force(ev);
  }

  // --- shorthands ---------------------------------------------------------

  create(creator = ALICE, extraContent: Record<string, any> = {}): RoomEvent {
    const content = this.version.implicitRoomCreator
      ? { room_version: this.version.id, ...extraContent }
      : { creator, room_version: this.version.id, ...extraContent };
    return this.add({ type: 'm.room.create', sender: creator, state_key: '', content, prev: [] });
  }

  member(sender: string, target: string, membership: string, content: Record<string, any> = {}): EventSpec {
    return { type: 'm.room.member', sender, state_key: target, content: { membership, ...content } };
  }

  join(user: string, content: Record<string, any> = {}): RoomEvent {
    return this.add(this.member(user, user, 'join', content));
  }

  powerLevels(sender: string, content: Record<string, any>): RoomEvent {
    return this.add({ type: 'm.room.power_levels', sender, state_key: '', content });
  }

  joinRules(sender: string, join_rule: string, extra: Record<string, any> = {}): RoomEvent {
    return this.add({ type: 'm.room.join_rules', sender, state_key: '', content: { join_rule, ...extra } });
  }

  /** create + creator join + PL (creator 100) + join rules. */
  standard(joinRule = 'public', users: Record<string, number> = {}): this {
    this.create(ALICE);
    this.join(ALICE);
    this.powerLevels(ALICE, { users: { [ALICE]: 100, ...users } });
    this.joinRules(ALICE, joinRule);
    return this;
  }
}

export function newRoom(versionId: string): RoomBuilder {
  return new RoomBuilder(rv(versionId));
}

export const ALL_VERSIONS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'];
