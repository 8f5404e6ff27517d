/**
 * The one path every local event takes (issue 3, "The event-creation path"):
 * build (prev_events from the forward extremities, auth_events from the
 * state, depth), hash + sign + event id per room version, check the auth
 * rules against the state before the event, persist with its state group.
 *
 * Requests into one room are serialised by a per-room queue; when several
 * are waiting they are built one after the other against the in-memory state
 * and committed in ONE transaction (batching). The current state of each
 * room is cached in memory and updated as events are built, so auth checks
 * never touch the database. A room's next batch is built while its previous
 * one is still being committed (pipelining); batches commit in the order they
 * were built, and a batch built on one that failed to commit fails too.
 */
import { checkAuth, authEventsSelection } from '../../matrix/auth-rules.js';
import { CanonicalJsonError, isStrictCanonical } from '../../matrix/canonical-json.js';
import { generateV1EventId } from '../../matrix/event-ids.js';
import { signAndHashEvent } from '../../matrix/event-signing.js';
import { computeReferenceHash } from '../../matrix/hashes.js';
import { encodeBase64 } from '../../matrix/base64.js';
import { redactEvent, redactsOf } from '../../matrix/redaction.js';
import { getRoomVersion, type RoomVersion } from '../../matrix/room-versions.js';
import type { SigningKey } from '../../matrix/signing.js';
import { stateKey, type EventReference, type Pdu, type RoomEvent, type StateIds, type StateMap } from '../../matrix/types.js';
import type { EventToPersist, ExtraRows, NewStateGroup, PersistBatch, RoomStore, UnsignedExtra } from '../../storage/rooms/store.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import { Errors, MatrixError } from '../../util/errors.js';
import { resolveForks } from './state-resolution.js';

/** The largest event the spec allows, as canonical JSON with signatures. */
export const MAX_EVENT_BYTES = 65536;
/** prev_events taken from the forward extremities. */
const MAX_PREV_EVENTS = 10;
/** Deltas before a state group is written as a full snapshot again. */
const SNAPSHOT_EVERY = 50;
/** Events built and committed together at most. */
const MAX_BATCH = 200;
/** Room batches committed in one transaction at most (group commit). */
const MAX_GROUP_BATCHES = 64;

export interface EventSpec {
  roomId: string;
  type: string;
  sender: string;
  stateKey?: string;
  content: Record<string, any>;
  /** m.room.redaction target (put in content for v11+, top level before). */
  redacts?: string;
  /** Client transaction id (sender's device) and its scope (the endpoint path, `txnScope`). */
  txn?: { deviceId: string; scope: string; txnId: string };
  /** Only for m.room.create: the room version of the new room. */
  roomVersion?: string;
  /**
   * Only for m.room.create in v12+ rooms: the origin_server_ts the room id
   * was derived with (`roomIdForCreateEvent`); the built event must match it.
   */
  originServerTs?: number;
  /** Checked against the state right before the event (after queueing). */
  precheck?: (state: CachedRoom) => void;
}

export interface CreatedEvent {
  eventId: string;
  event: RoomEvent;
  streamOrdering: number;
}

/** The cached current state of a room. */
export interface CachedRoom {
  roomId: string;
  rv: RoomVersion;
  /** Current state: (type, state_key) -> event. */
  state: StateMap;
  /** Group holding the current state (null before the create event). */
  stateGroup: number | null;
  deltaDepth: number;
  /** Forward extremities (full events: v1/v2 references need their hashes). */
  extremities: RoomEvent[];
  /** A resolved-state group not yet written (several extremities). */
  pendingGroup?: NewStateGroup;
  /** Resolved state events that current_state_events does not hold yet. */
  pendingStateFix?: Array<{ event: RoomEvent; streamOrdering: number }>;
}

interface Pending {
  spec: EventSpec;
  resolve: (r: CreatedEvent) => void;
  reject: (e: unknown) => void;
}

export interface EventCreatorDeps {
  store: RoomStore;
  serverName: string;
  signingKey: SigningKey;
  stream: StreamIdGenerator;
  notifier: StreamNotifier;
  /** Next state group id. */
  nextStateGroup: () => number;
  /** Called after each committed batch (e.g. derived caches, listeners). */
  onPersisted?: (roomId: string, events: CreatedEvent[]) => void;
  /**
   * Rows other capabilities write in the same transaction as a batch's
   * events (push actions: an event never commits without them). `prepare`
   * runs after the batch is built and numbered, before the commit; when it
   * throws, the batch fails. `aborted` tells it that a prepared batch did not
   * commit (drop what it derived in memory).
   */
  batchRows?: {
    prepare(roomId: string, events: CreatedEvent[]): Promise<ExtraRows[] | undefined>;
    aborted?(roomId: string): void;
  };
  /**
   * Keep room state cached between calls (default true). A process that does
   * not write events (a worker) sees other processes' writes only in the
   * database, so it reads fresh state instead.
   */
  cacheState?: boolean;
  /**
   * Several event persisters: whether this process persists the events of
   * a room (its shard). Every event of a room must be persisted by the
   * room's persister (readers read a room up to that persister's position),
   * so an event of another shard is refused (and reported through
   * `onForeignRoom`): a write path that does not route by room shows up.
   */
  ownsRoom?: (roomId: string) => boolean;
  onForeignRoom?: (roomId: string, type: string) => void;
}

export class EventCreator {
  private readonly rooms = new Map<string, Promise<CachedRoom>>();
  private readonly queues = new Map<string, Pending[]>();
  private readonly running = new Set<string>();
  /** Wakes a room's drain that waits for its last commit (a new request came). */
  private readonly wake = new Map<string, () => void>();
  private readonly commitQueue: CommitItem[] = [];
  /** Per room: the last batch queued for commit and the cached room it was built on. */
  private readonly lastCommit = new Map<string, { room: CachedRoom; item: CommitItem }>();
  private committing = false;
  private flushScheduled = false;

  constructor(private readonly deps: EventCreatorDeps) {}

  /** Builds, checks and persists one event; resolves once it is committed. */
  create(spec: EventSpec): Promise<CreatedEvent> {
    if (this.deps.ownsRoom && !this.deps.ownsRoom(spec.roomId)) {
      this.deps.onForeignRoom?.(spec.roomId, spec.type);
      return Promise.reject(new Error(`event of room ${spec.roomId} refused: another event persister's shard`));
    }
    return new Promise((resolve, reject) => {
      let q = this.queues.get(spec.roomId);
      if (!q) this.queues.set(spec.roomId, (q = []));
      q.push({ spec, resolve, reject });
      if (!this.running.has(spec.roomId)) void this.drain(spec.roomId);
      else this.wake.get(spec.roomId)?.();
    });
  }

  /** The cached current state of a room (undefined if the room is unknown). */
  async getRoomState(roomId: string): Promise<CachedRoom | undefined> {
    try {
      // Cached only where every write of the room passes: a process that
      // does not write events, or a persister asked about another one's
      // room (it may serve client reads), reads the database each time.
      const cached = this.deps.cacheState !== false && (!this.deps.ownsRoom || this.deps.ownsRoom(roomId));
      if (!cached && !this.running.has(roomId)) return await this.loadFromStore(roomId);
      return await this.load(roomId);
    } catch (e) {
      if (e instanceof UnknownRoom) return undefined;
      throw e;
    }
  }

  /** Drops the cached state of a room (another writer changed it). */
  invalidate(roomId: string): void {
    this.rooms.delete(roomId);
  }

  // ---------------------------------------------------------------- queue

  private async drain(roomId: string): Promise<void> {
    this.running.add(roomId);
    let tail: Promise<void> | undefined;
    try {
      for (;;) {
        const q = this.queues.get(roomId);
        if (q?.length) {
          // Built now, committed in the background: the next batch is built meanwhile.
          tail = (await this.processBatch(roomId, q.splice(0, MAX_BATCH)))?.committed ?? tail;
          continue;
        }
        if (!tail) break;
        // The room stays "running" until its last batch is in the database;
        // new requests meanwhile are built at once (create() wakes us).
        const t = tail;
        const settled = await Promise.race([t.then(() => true), new Promise<false>((r) => this.wake.set(roomId, () => r(false)))]);
        this.wake.delete(roomId);
        if (settled && tail === t) tail = undefined;
      }
    } finally {
      this.wake.delete(roomId);
      this.running.delete(roomId);
      this.queues.delete(roomId);
    }
  }

  /**
   * Builds a batch and queues it for commit; returns the (never rejecting)
   * promise of its commit and completion, or undefined when nothing was queued
   * (wrapped: an async function would wait for a returned promise).
   */
  private async processBatch(roomId: string, batch: Pending[]): Promise<{ committed: Promise<void> } | undefined> {
    let room: CachedRoom | undefined;
    try {
      room = await this.load(roomId);
    } catch (e) {
      if (!(e instanceof UnknownRoom)) {
        for (const p of batch) p.reject(e);
        return undefined;
      }
    }
    const built: Array<{ p: Pending; persist: EventToPersist; event: RoomEvent }> = [];
    for (const p of batch) {
      try {
        if (!room) {
          // Only a create event may start a room.
          if (p.spec.type !== 'm.room.create' || p.spec.stateKey !== '') throw Errors.forbidden('Unknown room');
          const rv = getRoomVersion(p.spec.roomVersion ?? '');
          if (!rv) throw Errors.unsupportedRoomVersion(String(p.spec.roomVersion));
          room = { roomId, rv, state: new Map(), stateGroup: null, deltaDepth: 0, extremities: [] };
          this.rooms.set(roomId, Promise.resolve(room));
        }
        p.spec.precheck?.(room);
        const { event, persist } = this.build(room, p.spec);
        built.push({ p, persist, event });
      } catch (e) {
        p.reject(e);
      }
    }
    if (!built.length || !room) return undefined;
    const last = this.lastCommit.get(roomId);
    const base = last && last.room === room ? last.item : undefined;

    // Async: in worker mode the events stream draws from a shared database sequence.
    let positions: number[];
    try {
      positions = await this.deps.stream.allocateManyAsync(built.length);
    } catch (e) {
      this.rooms.delete(roomId); // the in-memory state ran ahead of the database
      for (const b of built) b.p.reject(e);
      return undefined;
    }
    const toPersist: EventToPersist[] = [];
    const created: CreatedEvent[] = [];
    for (let i = 0; i < built.length; i++) {
      const b = built[i]!;
      b.persist.streamOrdering = positions[i]!;
      toPersist.push(b.persist);
      created.push({ eventId: b.event.event_id, event: b.event, streamOrdering: positions[i]! });
    }
    const failed = (e: unknown) => {
      // The in-memory state ran ahead of the database: reload next time
      // (after the room's batches still in flight: `load`).
      this.rooms.delete(roomId);
      try {
        this.deps.batchRows?.aborted?.(roomId);
      } catch {
        /* nothing more to undo */
      }
      for (const b of built) b.p.reject(e);
    };
    let extraRows: ExtraRows[] | undefined;
    try {
      extraRows = this.deps.batchRows ? await this.deps.batchRows.prepare(roomId, created) : undefined;
    } catch (e) {
      for (const pos of positions) this.deps.stream.finish(pos);
      failed(e);
      return undefined;
    }
    const item = this.commit(
      { roomId, events: toPersist, forwardExtremities: room.extremities.map((e) => e.event_id), ...(extraRows?.length ? { extraRows } : {}) },
      base,
    );
    this.lastCommit.set(roomId, { room, item });
    const committed = item.done.then(
      () => {
        for (const pos of positions) this.deps.stream.finish(pos);
        this.persisted(roomId, built, created, positions);
      },
      (e) => {
        for (const pos of positions) this.deps.stream.finish(pos);
        failed(e);
      },
    )
      .catch((e) => {
        for (const b of built) b.p.reject(e); // a listener threw before every request was answered
      })
      .finally(() => {
        if (this.lastCommit.get(roomId)?.item === item) this.lastCommit.delete(roomId);
      });
    return { committed };
  }

  private persisted(roomId: string, built: Array<{ p: Pending }>, created: CreatedEvent[], positions: number[]): void {
    const users = new Set<string>();
    for (const c of created) if (c.event.type === 'm.room.member' && typeof c.event.state_key === 'string') users.add(c.event.state_key);
    this.deps.notifier.notify({
      stream: 'events',
      position: positions[positions.length - 1]!,
      rooms: [roomId],
      ...(users.size ? { users: [...users] } : {}),
    });
    try {
      this.deps.onPersisted?.(roomId, created);
    } catch {
      /* listeners must not fail the send */
    }
    built.forEach((b, i) => b.p.resolve(created[i]!));
  }

  // ---------------------------------------------------------------- group commit

  /**
   * Queues a room's batch for commit together with the batches of other rooms
   * that are ready at the same time (group commit): the first batch waits one
   * setImmediate so that every request parsed in the same turn of the event
   * loop joins it, and batches that become ready while a commit is in flight
   * go into the next one, which starts as soon as it finishes. With
   * synchronous=FULL every commit is an fsync, so this is what makes durable
   * writes cheap under load. If a group fails, its batches are retried one by
   * one so that one bad batch fails alone. `base` is the batch of the same
   * room this one was built on: if it did not commit, neither does this one.
   */
  private commit(batch: PersistBatch, base: CommitItem | undefined): CommitItem {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    const item: CommitItem = { batch, base, state: 'queued', done, resolve, reject };
    this.commitQueue.push(item);
    if (!this.committing && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        void this.flush();
      });
    }
    return item;
  }

  private async flush(): Promise<void> {
    const { store } = this.deps;
    this.committing = true;
    const settle = (g: CommitItem, e?: unknown) => {
      g.state = e === undefined ? 'ok' : 'failed';
      if (e === undefined) g.resolve();
      else g.reject(e);
    };
    // A batch built on one that failed cannot commit (its prev_events are missing).
    const orphaned = (g: CommitItem) => {
      if (g.base?.state !== 'failed') return false;
      settle(g, new Error('an earlier event of this room could not be persisted'));
      return true;
    };
    try {
      while (this.commitQueue.length) {
        const group = this.commitQueue.splice(0, store.persistEventBatches ? MAX_GROUP_BATCHES : 1).filter((g) => !orphaned(g));
        if (!group.length) continue;
        try {
          if (store.persistEventBatches) await store.persistEventBatches(mergeByRoom(group.map((g) => g.batch)));
          else await store.persistEvents(group[0]!.batch);
          for (const g of group) settle(g);
        } catch (e) {
          if (group.length === 1) settle(group[0]!, e);
          else {
            for (const g of group) {
              if (orphaned(g)) continue;
              try {
                await store.persistEvents(g.batch);
                settle(g);
              } catch (e2) {
                settle(g, e2);
              }
            }
          }
        }
      }
    } finally {
      this.committing = false;
    }
  }

  // ---------------------------------------------------------------- build

  /** Builds and auth-checks one event, and applies it to the cached room. */
  private build(room: CachedRoom, spec: EventSpec): { event: RoomEvent; persist: EventToPersist } {
    const { rv } = room;
    const isState = typeof spec.stateKey === 'string';
    if (rv.strictCanonicalJson && !isStrictCanonical(spec.content)) {
      throw Errors.badJson('Event content must be canonical JSON: integers in [-(2**53)+1, (2**53)-1], no floats');
    }
    const prevs = room.extremities.length > 1 ? [...room.extremities].sort((a, b) => b.depth - a.depth).slice(0, MAX_PREV_EVENTS) : room.extremities;
    const depth = prevs.length ? prevs[0]!.depth + 1 : 1;
    const authIds: RoomEvent[] = [];
    for (const pair of authEventsSelection(spec.type, spec.stateKey, spec.sender, spec.content, rv)) {
      const e = room.state.get(stateKey(pair.type, pair.stateKey));
      if (e) authIds.push(e);
    }
    const ref = (e: RoomEvent): EventReference =>
      rv.eventIdFormat === 'v1' ? [e.event_id, { sha256: encodeBase64(computeReferenceHash(e, rv)) }] : e.event_id;

    // v12+: the create event has no room_id (the room id is derived from it).
    const hashRoomCreate = rv.roomIdFromCreateEvent && spec.type === 'm.room.create';
    const pdu: Pdu = {
      room_id: room.roomId,
      sender: spec.sender,
      type: spec.type,
      content: spec.content,
      origin_server_ts: hashRoomCreate && spec.originServerTs !== undefined ? spec.originServerTs : Date.now(),
      depth,
      prev_events: prevs.map(ref),
      auth_events: authIds.map(ref),
    };
    if (hashRoomCreate) delete (pdu as Partial<Pdu>).room_id;
    if (isState) pdu.state_key = spec.stateKey;
    if (spec.redacts !== undefined) {
      if (rv.redactsInContent) pdu.content = { ...spec.content, redacts: spec.redacts };
      else pdu.redacts = spec.redacts;
    }
    if (rv.eventIdFormat === 'v1') {
      pdu.event_id = generateV1EventId(this.deps.serverName);
      // v1 events carry origin (kept by redaction in older versions).
      pdu.origin = this.deps.serverName;
    }
    let signed: Pdu;
    let eventId: string;
    let size: number;
    let json: string | undefined;
    try {
      ({ pdu: signed, eventId, size, json } = signAndHashEvent(pdu, rv, this.deps.serverName, this.deps.signingKey));
    } catch (e) {
      if (e instanceof CanonicalJsonError) throw Errors.badJson(e.message);
      throw e;
    }
    // `signed` is a new object of our own: the event is it plus its id (v1: already there).
    const event = signed as RoomEvent;
    event.event_id = eventId;
    if (hashRoomCreate && '!' + eventId.slice(1) !== room.roomId) {
      throw new Error(`create event ${eventId} does not match the room id ${room.roomId}`);
    }

    // Size: canonical JSON of the federation form, signatures included.
    if (size > MAX_EVENT_BYTES) throw Errors.tooLarge(`Event is larger than ${MAX_EVENT_BYTES} bytes`);

    const auth = checkAuth(event, room.state, rv);
    if (!auth.allowed) throw new MatrixError(403, 'M_FORBIDDEN', auth.reason);

    // Apply to the cached room: extremities, state, state group.
    room.extremities = [event];
    let stateGroup = room.stateGroup;
    let newStateGroup: NewStateGroup | undefined;
    let unsignedExtra: UnsignedExtra | undefined;
    let currentStateFix: CachedRoom['pendingStateFix'];
    if (room.pendingGroup) {
      newStateGroup = room.pendingGroup;
      currentStateFix = room.pendingStateFix;
      room.pendingGroup = undefined;
      room.pendingStateFix = undefined;
    }
    if (isState) {
      const key = stateKey(spec.type, spec.stateKey!);
      const prev = room.state.get(key);
      if (prev) unsignedExtra = { replaces_state: prev.event_id, prev_content: prev.content, prev_sender: prev.sender };
      room.state.set(key, event);
      const id = this.deps.nextStateGroup();
      if (newStateGroup) {
        // The resolved group is itself new: fold this change into it.
        newStateGroup = { ...newStateGroup, entries: new Map(newStateGroup.entries).set(key, event.event_id) };
        newStateGroup.id = id;
      } else if (room.stateGroup === null || room.deltaDepth + 1 >= SNAPSHOT_EVERY) {
        newStateGroup = { id, prevGroup: null, deltaDepth: 0, entries: idsOf(room.state) };
      } else {
        newStateGroup = { id, prevGroup: room.stateGroup, deltaDepth: room.deltaDepth + 1, entries: new Map([[key, event.event_id]]) };
      }
      stateGroup = id;
      room.stateGroup = id;
      room.deltaDepth = newStateGroup.deltaDepth;
    } else if (newStateGroup) {
      stateGroup = newStateGroup.id;
      room.stateGroup = newStateGroup.id;
      room.deltaDepth = newStateGroup.deltaDepth;
    }

    // streamOrdering is set once the batch's positions are drawn (processBatch).
    const persist: EventToPersist = { event, streamOrdering: 0, stateGroup: stateGroup! };
    // The stored text, from the texts signing encoded (the event is not changed after this).
    if (json !== undefined) persist.json = json;
    if (newStateGroup) persist.newStateGroup = newStateGroup;
    if (unsignedExtra) persist.unsignedExtra = unsignedExtra;
    if (currentStateFix?.length) persist.currentStateFix = currentStateFix;
    if (spec.txn) persist.txn = { userId: spec.sender, deviceId: spec.txn.deviceId, scope: spec.txn.scope, txnId: spec.txn.txnId };
    if (spec.type === 'm.room.create') {
      persist.createRoom = { roomVersion: rv.id, creator: spec.sender };
    }
    if (spec.type === 'm.room.redaction') {
      const target = redactsOf(event, rv);
      if (target) {
        persist.redacts = target;
        // A redacted state event keeps only its essential keys, also for auth.
        for (const [k, e] of room.state) {
          if (e.event_id === target) room.state.set(k, { ...redactEvent(e, rv), event_id: e.event_id });
        }
      }
    }
    return { event, persist };
  }

  // ---------------------------------------------------------------- load

  private load(roomId: string): Promise<CachedRoom> {
    let p = this.rooms.get(roomId);
    if (!p) {
      // Batches of the room still in flight first: the database must hold them.
      const inflight = this.lastCommit.get(roomId)?.item.done;
      p = inflight ? inflight.then(ok, ok).then(() => this.loadFromStore(roomId)) : this.loadFromStore(roomId);
      this.rooms.set(roomId, p);
      const mine = p;
      p.catch(() => {
        if (this.rooms.get(roomId) === mine) this.rooms.delete(roomId);
      });
    }
    return p;
  }

  private async loadFromStore(roomId: string): Promise<CachedRoom> {
    const { store } = this.deps;
    const row = await store.getRoom(roomId);
    if (!row) throw new UnknownRoom(roomId);
    const rv = getRoomVersion(row.roomVersion);
    if (!rv) throw new Error(`room ${roomId} has unknown version ${row.roomVersion}`);
    const [stateIds, extremityIds] = await Promise.all([store.getCurrentStateIds(roomId), store.getForwardExtremities(roomId)]);
    const events = await store.getEvents([...stateIds.values(), ...extremityIds]);
    const state: StateMap = new Map();
    for (const [k, id] of stateIds) {
      const e = events.get(id);
      // Redacted state counts in its redacted form (also for auth).
      if (e) state.set(k, e.redactedBy ? { ...redactEvent(e.event, rv), event_id: id } : e.event);
    }
    const extremities = extremityIds.map((id) => events.get(id)?.event).filter((e): e is RoomEvent => !!e);
    const groups = await store.getStateGroups(extremityIds);
    const distinct = [...new Set(groups.values())];
    const room: CachedRoom = { roomId, rv, state, stateGroup: null, deltaDepth: 0, extremities };
    if (distinct.length === 1) {
      room.stateGroup = distinct[0]!;
      room.deltaDepth = (await store.getStateGroupInfo(room.stateGroup))?.deltaDepth ?? 0;
    } else if (distinct.length > 1) {
      // Several forks: the next event's state is their resolution.
      const resolved = await resolveForks(store, rv, distinct);
      const resolvedEvents = await store.getEvents([...resolved.values()]);
      room.state = new Map();
      room.pendingStateFix = [];
      for (const [k, id] of resolved) {
        const e = resolvedEvents.get(id);
        if (!e) continue;
        room.state.set(k, e.event);
        if (stateIds.get(k) !== id) room.pendingStateFix.push({ event: e.event, streamOrdering: e.streamOrdering });
      }
      room.pendingGroup = { id: this.deps.nextStateGroup(), prevGroup: null, deltaDepth: 0, entries: resolved };
      room.stateGroup = room.pendingGroup.id;
    }
    return room;
  }
}

/** A batch queued for commit. */
interface CommitItem {
  batch: PersistBatch;
  /** The batch of the same room this one was built on (while that one was in flight). */
  base: CommitItem | undefined;
  state: 'queued' | 'ok' | 'failed';
  /** Settles when committed (or failed). */
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Batches of the same room in one group are written as one (in order): their
 * events together, the forward extremities and extra rows of the last.
 */
function mergeByRoom(batches: readonly PersistBatch[]): PersistBatch[] {
  const byRoom = new Map<string, PersistBatch>();
  for (const b of batches) {
    const prev = byRoom.get(b.roomId);
    if (!prev) {
      byRoom.set(b.roomId, b);
      continue;
    }
    const extraRows = [...(prev.extraRows ?? []), ...(b.extraRows ?? [])];
    byRoom.set(b.roomId, {
      roomId: b.roomId,
      events: [...prev.events, ...b.events],
      forwardExtremities: b.forwardExtremities,
      ...(extraRows.length ? { extraRows } : {}),
    });
  }
  return [...byRoom.values()];
}

class UnknownRoom extends Error {
  constructor(roomId: string) {
    super(`unknown room ${roomId}`);
  }
}

const ok = (): void => {};

function idsOf(state: StateMap): StateIds {
  const out: StateIds = new Map();
  for (const [k, e] of state) out.set(k, e.event_id);
  return out;
}
