/**
 * Stream replication between processes (DESIGN.md §4): "Redis is a
 * doorbell, the database is the record".
 *
 * Publishing (every process, for the streams it writes). The local notifier
 * taps every local change; once this writer's own position covers the change
 * (writes may commit out of order) it is published as
 *   RDATA <stream> <me> <position> {"rooms","users","prev","ts",...}
 * where `prev` is the last position this instance announced on the stream
 * (a reader that has not seen `prev` missed something) and `ts` the publish
 * time (replication lag). Positions reached without a row (an idle event
 * persister following the others, a restart) are announced by POSITION.
 * Single-writer positions are also written to `stream_positions`, so that a
 * reader can catch up from the database.
 *
 * Events with several writers (event persisters): readers read each
 * persister's rows up to that persister's own position (the per-writer part
 * of sync tokens), so a persister publishes its row once its own position
 * covers it, whatever the others do (a slow or paused persister holds back
 * only its own rooms). The minimum still moves only when an idle persister
 * hears of the others' writes, so a persister tells the other persisters,
 * alone (POSITION on their own channels), when its position moved without a
 * row of its own saying so (50 ms after, one POSITION for a run of moves:
 * no write waits for it), and its rows carry the other persisters'
 * positions as it knows them (`positions`). A process that only follows
 * thus gets at most one message per event instead of one per persister (the
 * transport puts the rows of one turn of the event loop into one message).
 * Idle persisters still announce their position to everyone at most twice a
 * second.
 *
 * Applying (every process, for the streams it does not write): advance the
 * local view of the stream (StreamIdGenerator.advanceTo, or the multi-writer
 * generator's advanceWriter), then notify the local notifier with the same
 * rooms and users, so /sync long-polls here wake.
 *
 * Following events on demand: the rows of the events stream go on a Redis
 * channel per persister (redis-transport.ts). The persisters follow each
 * other's always (an idle one follows the others to move the minimum) and
 * never hear their own. Any other process follows them only while a
 * long-poll may wait for them: `followEvents()` (called before a /sync or
 * /events long-poll waits) subscribes and reads the events positions once
 * (rows arriving meanwhile are no gap: the read covers what came before the
 * subscription), and the process stops following after EVENTS_LINGER_MS
 * without a waiter. A process
 * that does not follow learns the events positions from the database where a
 * read needs them (`freshPositions`, the periodic catch-up) and from the
 * answers of the writes it forwards, and is not woken by every event.
 *
 * Catch-up: at start, after a Redis reconnection, when a gap is seen, and
 * periodically (every second while Redis is away), read `stream_positions`
 * (one query), advance every stream and wake all its waiters (we do not know
 * whom the missed rows concern). Typing lives only in its writer's memory:
 * a reader that fell behind asks the writer (`typing_updates`).
 *
 * Read-after-write (a client reads, through any process, what it has just
 * written through another; Redis may still be carrying the rows):
 *   - the writer answers a write only once the stream's readable position
 *     covers it (events: the persister's own position) and the positions
 *     are recorded in `stream_positions` (`settleWrite`); the answer carries
 *     them to the process that forwarded the write, which exposes them at
 *     once (`applyWriteReply`);
 *   - a read that depends on the current position first reads
 *     `stream_positions` (`freshPositions`: one query, shared by the reads
 *     that arrive meanwhile); a /sync long-poll from a token this process
 *     has reached does without (the rows wake it: sync-service.ts,
 *     needsFreshPositions).
 * Positions learnt that way are not yet "seen" on Redis: the rows (which
 * wake exactly the long-polls concerned) normally follow within
 * milliseconds; if they do not, a catch-up wakes every waiter of the stream.
 */
import type { Logger } from 'pino';
import type { StreamIdGenerator } from '../streams/id-generator.js';
import type { NotifiedStream, StreamChange } from '../streams/notifier-types.js';
import type { CacheRegistry } from './caches.js';
import type { Command } from './commands.js';
import { MultiWriterEventsStream } from './events-stream.js';

/** A stream row as published in RDATA. */
export interface StreamRow {
  rooms?: string[];
  users?: string[];
  /**
   * events with several writers: the other writers' positions as the
   * publisher knows them (they told it; see "Publishing" above), so that
   * readers need no message of their own from an idle persister.
   */
  positions?: Record<string, number>;
  /** The previous position this instance announced on the stream. */
  prev: number;
  /** Publish time, ms since epoch (replication lag). */
  ts: number;
  /** typing: the room's typing users after the change. */
  typing?: Record<string, string[]>;
}

export interface TransportLike {
  send(cmd: Command): Promise<boolean>;
  /** To one instance (its own channel); without it, `send` to everyone. */
  sendTo?(instance: string, cmd: Command): Promise<boolean>;
  /** The broadcast channel's name: commands on any other channel were sent to us alone (unless `isDirect` says). */
  readonly broadcast?: string;
  /** Whether a command on `channel` was sent to us alone. */
  isDirect?(channel: string): boolean;
  /**
   * Starts hearing `stream`'s rows from `writers` (when the transport puts
   * them on channels of their own: without these, every process hears every
   * row). Resolves false if the subscription was not confirmed in time.
   */
  follow?(stream: string, writers: readonly string[]): Promise<boolean>;
  unfollow?(stream: string): Promise<void>;
  on(event: 'command', fn: (cmd: Command, channel: string) => void): unknown;
  on(event: 'reconnected' | 'disconnected', fn: () => void): unknown;
}

export interface TypingReplicaHooks {
  /** Writer: the typing lists of rooms (for RDATA rows). */
  usersTyping(roomId: string): string[];
  /** Reader: apply a room's list at a position. */
  apply(roomId: string, userIds: string[], position: number): void;
  /** Reader: rooms where someone types now (emptied when the writer restarted). */
  roomsWithTyping(): string[];
  /** Reader: ask the writer for the rows after `from`. */
  fetch(from: number): Promise<{ position: number; startedAt: number; rows: Array<{ roomId: string; userIds: string[]; position: number }> }>;
}

export interface ReplicationMetricsHooks {
  published?(stream: string): void;
  applied?(stream: string, lagMs: number | undefined): void;
  caughtUp?(reason: string): void;
}

export interface PositionRow {
  stream_name: string;
  instance_name: string;
  stream_id: number | string;
}

export interface StreamReplicatorDeps {
  instanceName: string;
  /**
   * Writers of a stream (normalised instance names). `'*'` means any process may write it.
   * The same array for as long as the writers do not change, never modified in place
   * (otherEventsWriters keeps what it worked out from it).
   */
  writersOf(stream: NotifiedStream): readonly string[];
  streams: Partial<Record<NotifiedStream, StreamIdGenerator>>;
  notifier: {
    taps: Array<(c: StreamChange) => void>;
    applyReplicated(c: StreamChange): void;
    wakeStream(stream: NotifiedStream, position: number): void;
    /** Long-polls waiting here (events are followed on demand while there are). */
    readonly waitingCount?: number;
  };
  transport?: TransportLike;
  readPositions(): Promise<PositionRow[]>;
  persistPosition(stream: string, instance: string, position: number): Promise<void>;
  typing?: TypingReplicaHooks;
  caches?: CacheRegistry;
  logger?: Pick<Logger, 'info' | 'warn' | 'debug'>;
  metrics?: ReplicationMetricsHooks;
  now?: () => number;
  /** Periodic database check while Redis is away (default 1000 ms) and otherwise (default 10 s). */
  pollDisconnectedMs?: number;
  pollConnectedMs?: number;
  /** A process following events on demand stops this long after its last waiter (default EVENTS_LINGER_MS). */
  eventsLingerMs?: number;
}

const key = (stream: string, instance: string) => `${stream}\u0000${instance}`;

/** A write waits at most this long for the stream to cover it (then answers anyway). */
export const SETTLE_MS = 5000;
/** A row of ours that readers could not read yet (another events writer lags) is published anyway after this long. */
const PUBLISH_ANYWAY_MS = 1000;
/** An events writer that only followed the others announces its position to everyone at most this often. */
const IDLE_ANNOUNCE_MS = 500;
/**
 * An events writer tells the other writers that its position moved (it
 * followed them) this long after the first move it has not told (trailing:
 * one POSITION for a run of followed rows).
 */
const TELL_WRITERS_MS = 50;
/** Positions learnt from a reply or the database that Redis has not confirmed after this long: catch up. */
const CONFIRM_MS = 1500;
/** A process that follows events on demand stops following them this long after its last long-poll. */
export const EVENTS_LINGER_MS = 30_000;
const DONE = Promise.resolve();
/** Per-process caches that follow a stream (dropped when the stream moves before its invalidations arrive). */
const STREAM_CACHES: Partial<Record<NotifiedStream, string[]>> = { account_data: ['account_data'], push_rules: ['push_rules'] };

export class StreamReplicator {
  readonly me: string;
  /** Last position this process announced per stream (RDATA or POSITION). */
  private readonly announced = new Map<string, number>();
  /** Highest position seen per stream and writer (a map per stream: no key string built per row). */
  private readonly seen = new Map<string, Map<string, number>>();
  /** Local changes waiting until readers can read them (this writer's position, events: every writer's). */
  private readonly pending = new Map<string, StreamChange[]>();
  /** When each pending change was queued. */
  private readonly pendingSince = new WeakMap<StreamChange, number>();
  /** events: our own position as last told to the other events writers. */
  private toldWriters = 0;
  private lastIdleAnnounce = 0;
  private readonly persisted = new Map<string, { running?: Promise<void>; again: boolean; done: number }>();
  private connected: boolean;
  private timer: NodeJS.Timeout | undefined;
  private lastPoll = 0;
  private catchingUp: Promise<void> | undefined;
  private catchUpAgain = false;
  private stopped = false;
  private positionTimer: NodeJS.Immediate | undefined;
  private tellTimer: NodeJS.Timeout | undefined;
  private readonly unsubs: Array<() => void> = [];
  /** Positions applied from a reply or a fresh read, waiting for Redis to confirm them. */
  private readonly unconfirmed = new Map<string, { stream: NotifiedStream; instance: string; position: number; at: number }>();
  private confirmTimer: NodeJS.Timeout | undefined;
  private freshRunning: Promise<void> | undefined;
  private freshNext: Promise<void> | undefined;
  private freshJoinable = false;
  /** events are followed on demand (see the header): this process does not write them. */
  private eventsOnDemand = false;
  /** Subscribed to the events rows (always, unless on demand). */
  private eventsLive = true;
  private eventsJoining: Promise<void> | undefined;
  private eventsNeededAt = 0;

  constructor(private readonly d: StreamReplicatorDeps) {
    this.me = d.instanceName;
    this.connected = !!d.transport;
  }

  /** Whether rows of `stream` reach this process now (not the events rows while it does not follow them). */
  private expectsRows(stream: NotifiedStream): boolean {
    return stream !== 'events' || this.eventsLive;
  }

  /** Whether this process hears the events rows now (tests, metrics). */
  get followsEvents(): boolean {
    return this.eventsLive;
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  private get eventsMulti(): MultiWriterEventsStream | undefined {
    const e = this.d.streams.events;
    return e instanceof MultiWriterEventsStream ? e : undefined;
  }

  /** Whether this process writes `stream` (publishes its rows). */
  writes(stream: NotifiedStream): boolean {
    const w = this.d.writersOf(stream);
    return w.includes('*') || w.includes(this.me);
  }

  /** Whether rows of `stream` from `instance` are applied here. */
  private accepts(stream: NotifiedStream, instance: string): boolean {
    if (instance === this.me) return false;
    const w = this.d.writersOf(stream);
    if (w.includes('*')) return true;
    if (!w.includes(instance)) return false;
    // A single-writer stream we write ourselves has nothing to learn.
    return stream === 'events' || !w.includes(this.me);
  }

  /** The position up to which this writer's own writes have all finished. */
  private ownPosition(stream: NotifiedStream): number {
    const g = this.d.streams[stream];
    if (!g) return 0;
    if (g instanceof MultiWriterEventsStream) return g.ownPosition(this.me);
    return g.getCurrent();
  }

  private seenMap(stream: string): Map<string, number> {
    let m = this.seen.get(stream);
    if (!m) this.seen.set(stream, (m = new Map()));
    return m;
  }

  private seenOf(stream: NotifiedStream, instance: string): number {
    const m = this.seenMap(stream);
    let v = m.get(instance);
    if (v === undefined) {
      const g = this.d.streams[stream];
      v = g instanceof MultiWriterEventsStream ? (g.multi.getWriterPosition(instance) ?? 0) : (g?.getCurrent() ?? 0);
      m.set(instance, v);
    }
    return v;
  }

  /** Raises what was seen of (stream, instance) to `position` (never lowers it). */
  private markSeen(stream: NotifiedStream, instance: string, position: number): void {
    const seen = this.seenOf(stream, instance);
    if (position > seen) this.seenMap(stream).set(instance, position);
  }

  /** Hooks the notifier and the transport, announces our positions and catches up once. */
  async start(): Promise<void> {
    this.d.notifier.taps.push((c) => this.onLocalChange(c));
    for (const [name, g] of Object.entries(this.d.streams) as Array<[NotifiedStream, StreamIdGenerator]>) {
      if (!g || !this.writes(name)) continue;
      this.announced.set(name, this.ownPosition(name));
      if (g instanceof MultiWriterEventsStream) {
        this.toldWriters = this.ownPosition(name);
        this.unsubs.push(
          g.multi.onAdvance((_pos, instance) => {
            if (instance === this.me) this.onOwnAdvance(name);
            // Another writer moved: rows of ours that waited for it may be readable now.
            else this.flushPending(name);
          }),
        );
      } else {
        this.unsubs.push(g.onAdvance(() => this.onOwnAdvance(name)));
        // The writer's position now (a restart may have moved it): the record for catch-up.
        void this.persist(name, g.getCurrent());
      }
    }
    const t = this.d.transport;
    if (t) {
      const direct = t.isDirect ? (channel: string) => t.isDirect!(channel) : (channel: string) => t.broadcast !== undefined && channel !== t.broadcast;
      t.on('command', (cmd, channel) => this.onCommand(cmd, direct(channel)));
      t.on('disconnected', () => {
        this.connected = false;
        this.d.logger?.warn('replication: redis connection lost; following streams from the database until it is back');
      });
      t.on('reconnected', () => {
        this.connected = true;
        this.requestCatchUp('reconnected', true);
        this.announceAll();
      });
    }
    const writers = this.d.writersOf('events');
    if (t?.follow && this.d.streams.events && !writers.includes('*')) {
      // The persisters follow each other always; the others on demand (they start not following).
      if (this.writes('events')) await t.follow('events', writers);
      else {
        this.eventsOnDemand = true;
        this.eventsLive = false;
      }
    }
    await this.catchUp('start', false);
    // Typing comes from its writer over HTTP, which may not be up yet: do not hold the start.
    void this.catchUpTyping();
    this.announceAll();
    this.timer = setInterval(() => this.tick(), 250);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.positionTimer) clearImmediate(this.positionTimer);
    clearTimeout(this.tellTimer);
    clearTimeout(this.confirmTimer);
    for (const u of this.unsubs) u();
  }

  private tick(): void {
    this.publishStale();
    if (this.eventsOnDemand && !this.eventsJoining) {
      const waiting = (this.d.notifier.waitingCount ?? 0) > 0;
      // A long-poll that waits without having asked (its request outlasted the linger): follow again.
      if (!this.eventsLive && waiting) void this.followEvents();
      else if (this.eventsLive && waiting) this.eventsNeededAt = this.now();
      else if (this.eventsLive && this.now() - this.eventsNeededAt >= (this.d.eventsLingerMs ?? EVENTS_LINGER_MS)) this.stopFollowingEvents();
    }
    const period = this.connected ? (this.d.pollConnectedMs ?? 10_000) : (this.d.pollDisconnectedMs ?? 1000);
    if (this.now() - this.lastPoll < period) return;
    this.requestCatchUp(this.connected ? 'periodic' : 'redis-away', !this.connected);
  }

  // ------------------------------------------------------------ publishing

  /**
   * Up to where rows of ours may be published: this writer's own position.
   * For events with several writers, readers read each writer's rows up to
   * that writer's own position (the per-writer part of sync tokens), so a
   * row is readable as soon as its writer has finished everything below it,
   * whatever the other persisters do (a slow one holds back only its own
   * rooms). The idle persisters tell the writers, not every process, that
   * they followed; the row carries their positions as the publisher knows
   * them.
   */
  private publishable(stream: NotifiedStream): number {
    return this.ownPosition(stream);
  }

  private otherWriters: { of: readonly string[]; others: readonly string[] } | undefined;

  /** The other events writers (worked out again only when `writersOf` gives another list). */
  private otherEventsWriters(): readonly string[] {
    const of = this.d.writersOf('events');
    if (this.otherWriters?.of !== of) this.otherWriters = { of, others: of.filter((w) => w !== this.me && w !== '*') };
    return this.otherWriters.others;
  }

  private onLocalChange(c: StreamChange): void {
    if (this.stopped || !this.writes(c.stream)) return;
    if (c.position <= this.publishable(c.stream)) {
      this.publish(c);
      return;
    }
    let q = this.pending.get(c.stream);
    if (!q) this.pending.set(c.stream, (q = []));
    q.push(c);
    this.pendingSince.set(c, this.now());
  }

  /** Publishes the pending rows readers can read now (or all that waited longer than `before`). */
  private flushPending(stream: NotifiedStream, before = -Infinity): void {
    const q = this.pending.get(stream);
    if (!q?.length) return;
    const upTo = this.publishable(stream);
    const ready = q.filter((c) => c.position <= upTo || (this.pendingSince.get(c) ?? 0) < before);
    if (!ready.length) return;
    this.pending.set(stream, q.filter((c) => !ready.includes(c)));
    for (const c of ready) this.publish(c);
  }

  /**
   * Rows held too long: published anyway; readers hold them. Not events
   * rows with several writers: a reader takes a row's position as its
   * writer's, so it must wait for this writer's own position (which moves
   * as soon as the earlier writes here finish or are abandoned).
   */
  private publishStale(): void {
    const before = this.now() - PUBLISH_ANYWAY_MS;
    for (const stream of this.pending.keys()) {
      if (stream === 'events' && this.d.streams.events instanceof MultiWriterEventsStream) continue;
      this.flushPending(stream as NotifiedStream, before);
    }
    // An idle writer tells everyone where it stands now and then (readers
    // learn it from the other writers' rows first; this is the backstop).
    const e = this.d.streams.events;
    if (e instanceof MultiWriterEventsStream && this.writes('events') && this.otherEventsWriters().length && !this.pending.get('events')?.length) {
      if (this.ownPosition('events') > (this.announced.get('events') ?? 0) && this.now() - this.lastIdleAnnounce >= IDLE_ANNOUNCE_MS) {
        this.lastIdleAnnounce = this.now();
        this.announce('events');
      }
    }
  }

  private onOwnAdvance(stream: NotifiedStream): void {
    this.flushPending(stream);
    const g = this.d.streams[stream];
    if (g && !(g instanceof MultiWriterEventsStream)) void this.persist(stream, g.getCurrent());
    // A position reached without a row of ours (an idle event persister following, an abandoned write): announce it.
    if (stream === 'events') this.schedulePositions();
  }

  private publish(c: StreamChange): void {
    const prev = this.announced.get(c.stream) ?? 0;
    this.announced.set(c.stream, Math.max(prev, c.position));
    const row: StreamRow = { prev, ts: this.now() };
    const g = this.d.streams[c.stream];
    const others = g instanceof MultiWriterEventsStream ? this.otherEventsWriters() : undefined;
    if (others?.length) {
      const multi = (g as MultiWriterEventsStream).multi;
      const positions: Record<string, number> = {};
      for (const w of others) positions[w] = multi.getWriterPosition(w) ?? 0;
      row.positions = positions;
    }
    if (c.rooms?.length) row.rooms = c.rooms;
    if (c.users?.length) row.users = c.users;
    if (c.stream === 'typing' && this.d.typing && c.rooms?.length) {
      row.typing = Object.fromEntries(c.rooms.map((r) => [r, this.d.typing!.usersTyping(r)]));
    }
    this.d.metrics?.published?.(c.stream);
    void this.d.transport?.send({ name: 'RDATA', stream: c.stream, instance: this.me, token: c.position, row });
  }

  private schedulePositions(): void {
    if (this.stopped) return;
    if (this.otherEventsWriters().length) {
      // Several events writers: only the other writers need to hear it (their
      // rows carry our position to the readers, so that the minimum moves), and
      // none waits for it (a write settles on its writer's own position), so a
      // short timer coalesces a run of followed rows into one POSITION, and
      // none is sent when a row of ours (which they read too) said it.
      if (this.tellTimer) return;
      this.tellTimer = setTimeout(() => {
        this.tellTimer = undefined;
        this.tellWriters();
      }, TELL_WRITERS_MS);
      this.tellTimer.unref?.();
      return;
    }
    if (this.positionTimer) return;
    // Once this turn's advances are done (they coalesce into one command).
    this.positionTimer = setImmediate(() => {
      this.positionTimer = undefined;
      if (this.stopped) return;
      const own = this.ownPosition('events');
      const prev = this.announced.get('events') ?? 0;
      if (own > prev && !this.pending.get('events')?.length) this.announce('events');
    });
    this.positionTimer.unref?.();
  }

  /** Tells the other events writers our position, on their own channels, unless our rows already did. */
  private tellWriters(): void {
    if (this.stopped) return;
    const own = this.ownPosition('events');
    // Our rows are broadcast: the other writers learnt our position from them.
    this.toldWriters = Math.max(this.toldWriters, this.announced.get('events') ?? 0);
    if (own <= this.toldWriters) return;
    const prev = this.toldWriters;
    this.toldWriters = own;
    const t = this.d.transport;
    const cmd = { name: 'POSITION' as const, stream: 'events', instance: this.me, prev, next: own };
    for (const w of this.otherEventsWriters()) void (t?.sendTo ? t.sendTo(w, cmd) : t?.send(cmd));
  }

  private announce(stream: NotifiedStream): void {
    const prev = this.announced.get(stream) ?? 0;
    const next = Math.max(prev, this.ownPosition(stream));
    this.announced.set(stream, next);
    if (stream === 'events') this.toldWriters = Math.max(this.toldWriters, next);
    void this.d.transport?.send({ name: 'POSITION', stream, instance: this.me, prev, next });
  }

  /** POSITION for every stream this process writes (at start and on REPLICATE). */
  announceAll(): void {
    for (const [name, g] of Object.entries(this.d.streams) as Array<[NotifiedStream, StreamIdGenerator]>) {
      if (g && this.writes(name) && !this.d.writersOf(name).includes('*')) this.announce(name);
    }
  }

  /** Writes this writer's position to stream_positions (coalesced, only upwards). */
  private persist(stream: string, position: number): Promise<void> {
    let p = this.persisted.get(stream);
    if (!p) this.persisted.set(stream, (p = { again: false, done: -1 }));
    const st = p;
    if (st.running) {
      st.again = true;
      // The run may be past its last check: make sure this position is covered.
      return st.running.then(() => (st.done >= position ? undefined : this.persist(stream, position)));
    }
    st.running = (async () => {
      try {
        let pos = position;
        do {
          st.again = false;
          const g = this.d.streams[stream as NotifiedStream];
          pos = Math.max(pos, g?.getCurrent() ?? 0);
          if (pos > st.done) {
            await this.d.persistPosition(stream, this.me, pos);
            st.done = pos;
          }
        } while (st.again);
      } catch (e) {
        this.d.logger?.warn({ err: e }, `replication: could not record the ${stream} position`);
      }
    })();
    // Cleared once done (not in a `finally`: with nothing to write the body ends synchronously).
    const run = st.running;
    void run.then(() => {
      if (st.running === run) st.running = undefined;
    });
    return run;
  }

  // ------------------------------------------------------------ applying

  /** `direct`: sent to this process alone (not part of the broadcast sequence that `prev` numbers). */
  onCommand(cmd: Command, direct = false): void {
    if (this.stopped) return;
    switch (cmd.name) {
      case 'RDATA':
        if (cmd.stream === 'caches') return this.applyCaches(cmd.instance, cmd.row);
        if (typeof cmd.token === 'number') this.applyRow(cmd.stream as NotifiedStream, cmd.instance, cmd.token, cmd.row as StreamRow);
        return;
      case 'POSITION':
        return this.applyPosition(cmd.stream as NotifiedStream, cmd.instance, direct ? 0 : cmd.prev, cmd.next);
      case 'REPLICATE':
        return this.announceAll();
      default:
        return;
    }
  }

  private applyCaches(instance: string, row: unknown): void {
    if (instance === this.me || !row || typeof row !== 'object') return;
    const { name, keys } = row as { name?: unknown; keys?: unknown };
    if (typeof name !== 'string' || !Array.isArray(keys)) return;
    this.d.caches?.applyLocal(name, keys.map(String));
  }

  /** Publishes a cache invalidation (the `caches` stream). */
  publishCacheInvalidation(name: string, keys: string[]): void {
    const prev = this.announced.get('caches') ?? 0;
    const token = Math.max(prev + 1, this.now());
    this.announced.set('caches', token);
    void this.d.transport?.send({ name: 'RDATA', stream: 'caches', instance: this.me, token, row: { name, keys } });
  }

  applyRow(stream: NotifiedStream, instance: string, token: number, row: StreamRow): void {
    const g = this.d.streams[stream];
    if (!g || !this.accepts(stream, instance)) return;
    const seen = this.seenOf(stream, instance);
    // Not following events (or joining: the join's read covers what came before): no gap.
    const gap = typeof row?.prev === 'number' && row.prev > seen && this.expectsRows(stream);
    if (token > seen) this.seenMap(stream).set(instance, token);
    // The other events writers' positions the publisher relays (they followed it), first: the row is readable at once.
    const relayed = stream === 'events' ? row?.positions : undefined;
    if (relayed && typeof relayed === 'object') {
      for (const w in relayed) {
        if (!Object.hasOwn(relayed, w)) continue;
        const p = relayed[w];
        if (typeof p !== 'number' || !Number.isSafeInteger(p) || !this.accepts(stream, w)) continue;
        this.markSeen(stream, w, p);
        this.advance(g, stream, w, p);
      }
    }
    this.d.metrics?.applied?.(stream, typeof row?.ts === 'number' ? this.now() - row.ts : undefined);
    if (stream === 'typing' && row.typing && this.d.typing) {
      for (const [roomId, users] of Object.entries(row.typing)) if (Array.isArray(users)) this.d.typing.apply(roomId, users.map(String), token);
    }
    this.advance(g, stream, instance, token);
    const change: StreamChange = { stream, position: token };
    // Several events writers: the row is readable once its own writer's position covers it (just advanced).
    if (g instanceof MultiWriterEventsStream) change.instance = instance;
    if (Array.isArray(row?.rooms) && row.rooms.length) change.rooms = row.rooms;
    if (Array.isArray(row?.users) && row.users.length) change.users = row.users;
    this.d.notifier.applyReplicated(change);
    if (gap) this.onGap(stream, instance, row.prev);
  }

  applyPosition(stream: NotifiedStream, instance: string, prev: number, next: number): void {
    const g = this.d.streams[stream];
    if (!g || !this.accepts(stream, instance)) return;
    const seen = this.seenOf(stream, instance);
    if (next > seen) this.seenMap(stream).set(instance, next);
    this.advance(g, stream, instance, next);
    if (prev > seen && this.expectsRows(stream)) this.onGap(stream, instance, next);
  }

  private advance(g: StreamIdGenerator, stream: NotifiedStream, instance: string, position: number): void {
    if (g instanceof MultiWriterEventsStream) g.advanceWriter(instance, position);
    else g.advanceTo(position);
  }

  /** Rows between what we saw and `upTo` were missed: wake everyone behind, refetch typing, drop caches. */
  private onGap(stream: NotifiedStream, instance: string, upTo: number): void {
    this.d.logger?.debug(`replication: gap on ${stream} from ${instance} (up to ${upTo}); catching up`);
    const g = this.d.streams[stream];
    if (g) this.d.notifier.wakeStream(stream, g.getCurrent());
    if (stream === 'typing') void this.catchUpTyping();
    else this.d.caches?.clearAll();
  }

  // ------------------------------------------------------------ catch-up

  /** Runs a catch-up soon (coalesced: one at a time, one more if asked meanwhile). */
  requestCatchUp(reason: string, typing: boolean): void {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    void this.catchUp(reason, typing);
  }

  /** Reads every writer's recorded position and advances; wakes the waiters of every stream that moved. */
  catchUp(reason: string, typing = true): Promise<void> {
    if (this.catchingUp) return this.catchingUp;
    this.lastPoll = this.now();
    this.catchingUp = (async () => {
      try {
        let rows: PositionRow[];
        try {
          rows = await this.d.readPositions();
        } catch (e) {
          this.d.logger?.warn({ err: e }, 'replication: could not read stream positions');
          return;
        }
        const moved = new Set<NotifiedStream>();
        for (const r of rows) {
          const stream = r.stream_name as NotifiedStream;
          const g = this.d.streams[stream];
          if (!g || stream === 'typing' || !this.accepts(stream, r.instance_name)) continue;
          const pos = Number(r.stream_id);
          const before = g.getCurrent();
          // Positions applied from replies or fresh reads are not "seen": rows may have been missed.
          const seenBefore = this.seenOf(stream, r.instance_name);
          this.advance(g, stream, r.instance_name, pos);
          if (pos > seenBefore) this.seenMap(stream).set(r.instance_name, pos);
          if (g.getCurrent() > before || pos > seenBefore) moved.add(stream);
        }
        for (const s of moved) this.d.notifier.wakeStream(s, this.d.streams[s]!.getCurrent());
        // Rows were missed (a process not following events misses theirs by design: no cache follows them there).
        const missed = [...moved].some((s) => this.expectsRows(s));
        if (missed || reason === 'reconnected') this.d.caches?.clearAll();
        if (!missed) moved.clear(); // (for the metrics and the log below)
        if (typing) await this.catchUpTyping();
        if (moved.size) {
          this.d.metrics?.caughtUp?.(reason);
          this.d.logger?.debug(`replication: caught up ${[...moved].join(', ')} from the database (${reason})`);
        }
      } finally {
        this.catchingUp = undefined;
        if (this.catchUpAgain && !this.stopped) {
          this.catchUpAgain = false;
          this.requestCatchUp('again', true);
        }
      }
    })();
    return this.catchingUp;
  }

  // ------------------------------------------------------------ read-after-write

  /** Resolves true once this writer's own events position covers `target`, false after `timeoutMs`. */
  private waitOwnCovers(multi: MultiWriterEventsStream['multi'], target: number, timeoutMs: number): Promise<boolean> {
    const own = () => multi.getWriterPosition(this.me) ?? 0;
    if (own() >= target) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        unsub();
        clearTimeout(timer);
        resolve(ok);
      };
      const unsub = multi.onAdvance(() => {
        if (own() >= target) finish(true);
      });
      const timer = setTimeout(() => finish(own() >= target), timeoutMs);
    });
  }

  /** Resolves true once `g` covers `target`, false after `timeoutMs`. */
  private waitCovers(g: StreamIdGenerator, target: number, timeoutMs: number, onSlow?: () => void): Promise<boolean> {
    if (g.getCurrent() >= target) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        unsub();
        clearTimeout(timer);
        clearTimeout(slow);
        resolve(ok);
      };
      const unsub = g.onAdvance(() => {
        if (g.getCurrent() >= target) finish(true);
      });
      const timer = setTimeout(() => finish(g.getCurrent() >= target), timeoutMs);
      const slow = onSlow ? setTimeout(onSlow, Math.min(250, timeoutMs / 4)) : undefined;
    });
  }

  /**
   * The writer, after a write of `stream` finished here: waits (at most
   * SETTLE_MS) until the readable position covers every write finished so
   * far — for events this persister's own position (readers read its rows up
   * to it) — records the positions in `stream_positions` and returns them
   * (the forwarder's `applyWriteReply`).
   */
  async settleWrite(stream: NotifiedStream): Promise<Record<string, number> | undefined> {
    const g = this.d.streams[stream];
    if (!g || this.stopped) return undefined;
    const multi = g instanceof MultiWriterEventsStream ? g.multi : undefined;
    let ownTarget = 0;
    if (multi) {
      // Events with several writers: readers read our rows up to our own
      // position, so the write is readable once that covers every id that
      // has finished here so far — the write's own ids finished before it
      // returned — (not the ids of requests still in flight, and not once the
      // other persisters follow: a slow one must not hold back our rooms).
      const target = (ownTarget = multi.getOwnLastFinished());
      const ok = await this.waitOwnCovers(multi, target, SETTLE_MS);
      if (!ok) this.d.logger?.warn(`replication: events did not reach ${target} on ${this.me} within ${SETTLE_MS} ms; answering anyway`);
    } else {
      const target = g.getLastAllocated();
      const ok = await this.waitCovers(g, target, SETTLE_MS, () => this.requestCatchUp('write-settle', false));
      if (!ok) this.d.logger?.warn(`replication: ${stream} did not reach ${target} within ${SETTLE_MS} ms (at ${g.getCurrent()}); answering anyway`);
    }
    if (multi) {
      // Our own position, up to the write, recorded: usually by the write's
      // own commit already (the others record theirs).
      await multi.persistOwn(Math.min(ownTarget, multi.getWriterPosition(this.me) ?? 0)).catch((e: unknown) => this.d.logger?.warn({ err: e }, 'replication: could not record the events positions'));
      return multi.getWriterPositions();
    }
    // Typing is not read from the database (readers ask its writer).
    if (stream !== 'typing') await this.persist(stream, g.getCurrent());
    return { [this.me]: g.getCurrent() };
  }

  /**
   * The process that forwarded a write, with the positions the writer
   * answered: they are committed (the writer's own is recorded too; the other
   * persisters' it learned from their rows, published after their commits,
   * and they record them themselves within 250 ms), so this process exposes them
   * at once (its long-polls are woken by the rows arriving on Redis). Typing
   * rows carry the typing lists themselves: wait (briefly) for them instead.
   */
  async applyWriteReply(stream: NotifiedStream, positions: Record<string, number> | undefined): Promise<void> {
    const g = this.d.streams[stream];
    if (!g || !positions || this.stopped) return;
    if (stream === 'typing') {
      const target = Math.max(0, ...Object.values(positions).map(Number));
      await this.waitCovers(g, target, 1000, () => void this.catchUpTyping());
      return;
    }
    this.applyUnconfirmed(stream, Object.entries(positions).map(([w, p]) => [w, Number(p)] as [string, number]));
  }

  /** Advances `stream` to positions not (yet) seen on Redis; they are checked later. */
  private applyUnconfirmed(stream: NotifiedStream, entries: Array<[string, number]>): void {
    const g = this.d.streams[stream];
    if (!g || stream === 'typing') return;
    const before = g.getCurrent();
    const now = this.now();
    for (const [instance, position] of entries) {
      if (!Number.isFinite(position) || !this.accepts(stream, instance)) continue;
      const seen = this.seenOf(stream, instance); // before advancing: what Redis told us
      this.advance(g, stream, instance, position);
      // Not following events: their rows are not expected.
      if (position > seen && this.expectsRows(stream)) {
        this.unconfirmed.set(key(stream, instance), { stream, instance, position, at: now });
        this.scheduleConfirm();
      }
    }
    // The rows' cache invalidations may still be on their way: drop what follows this stream.
    if (g.getCurrent() > before) for (const name of STREAM_CACHES[stream] ?? []) this.d.caches?.clear(name);
  }

  private scheduleConfirm(): void {
    if (this.confirmTimer || this.stopped) return;
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      const old = this.now() - CONFIRM_MS;
      let missed = false;
      for (const [k, u] of this.unconfirmed) {
        if (this.seenOf(u.stream, u.instance) >= u.position) this.unconfirmed.delete(k);
        else if (u.at <= old) {
          this.unconfirmed.delete(k);
          missed = true;
        }
      }
      // Rows we never received: the catch-up wakes every waiter of those streams.
      if (missed) this.requestCatchUp('unconfirmed', false);
      if (this.unconfirmed.size) this.scheduleConfirm();
    }, CONFIRM_MS);
    this.confirmTimer.unref?.();
  }

  /**
   * Before a long-poll waits for events here: once this resolves, this
   * process hears the events rows, and the events positions are as fresh as
   * `freshPositions` makes them when it did not follow them before (the
   * other streams' are not read: callers that need them fresh still call
   * `freshPositions`). Long-polls arriving while it subscribes share it.
   */
  followEvents(): Promise<void> {
    if (!this.eventsOnDemand || this.stopped) return DONE;
    this.eventsNeededAt = this.now();
    if (this.eventsLive) return DONE;
    return (this.eventsJoining ??= this.joinEvents());
  }

  private async joinEvents(): Promise<void> {
    try {
      // Subscribed first, then the positions: a row published before the
      // subscription was committed, with its position recorded, before the read.
      const subscribed = await this.d.transport!.follow!('events', this.d.writersOf('events'));
      if (!subscribed) this.d.logger?.warn('replication: could not subscribe to the events rows in time; reading the positions, trying again at the next long-poll');
      let rows: PositionRow[] = [];
      try {
        rows = await this.d.readPositions();
      } catch (e) {
        this.d.logger?.warn({ err: e }, 'replication: could not read stream positions (following events)');
      }
      const g = this.d.streams.events;
      if (g) {
        const multi = g instanceof MultiWriterEventsStream ? g.multi : undefined;
        const before = g.getCurrent();
        for (const r of rows) {
          if (r.stream_name !== 'events' || !this.accepts('events', r.instance_name)) continue;
          const pos = Number(r.stream_id);
          const was = multi?.getWriterPosition(r.instance_name) ?? 0;
          this.advance(g, 'events', r.instance_name, pos);
          this.markSeen('events', r.instance_name, pos);
          // A long-poll that waited while we did not follow (it outlasted the linger) may be concerned.
          if (multi && pos > was) this.d.notifier.applyReplicated({ stream: 'events', position: pos, instance: r.instance_name });
        }
        if (!multi && g.getCurrent() > before) this.d.notifier.wakeStream('events', g.getCurrent());
      }
      // Live once the read is applied: long-polls arriving before waited for it.
      if (subscribed && !this.stopped) {
        this.eventsLive = true;
        this.eventsNeededAt = this.now();
        this.d.logger?.debug('replication: a long-poll waits for events here; following their rows');
      }
    } finally {
      this.eventsJoining = undefined;
    }
  }

  private stopFollowingEvents(): void {
    this.eventsLive = false;
    // Their rows are no longer expected.
    for (const [k, u] of this.unconfirmed) if (u.stream === 'events') this.unconfirmed.delete(k);
    this.d.logger?.debug('replication: no long-poll waits for events here; no longer following their rows');
    void this.d.transport?.unfollow?.('events');
  }

  /**
   * Before a read that depends on the current position: reads every
   * writer's recorded position (one query) and advances. A read already
   * running may have started before this call, so callers arriving
   * meanwhile share the next one: a write acknowledged before the call is
   * always covered. Typing (in memory) is not refreshed.
   */
  freshPositions(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.freshNext) return this.freshNext;
    // Started in this same turn (before any I/O): its query cannot predate the caller's request.
    if (this.freshRunning && this.freshJoinable) return this.freshRunning;
    if (!this.freshRunning) return this.startFresh();
    const next = this.freshRunning.then(() => {
      this.freshNext = undefined;
      return this.startFresh();
    });
    this.freshNext = next;
    return next;
  }

  private startFresh(): Promise<void> {
    this.freshJoinable = true;
    queueMicrotask(() => (this.freshJoinable = false));
    return (this.freshRunning = this.runFresh());
  }

  private async runFresh(): Promise<void> {
    try {
      const rows = await this.d.readPositions();
      const byStream = new Map<NotifiedStream, Array<[string, number]>>();
      for (const r of rows) {
        const stream = r.stream_name as NotifiedStream;
        if (!this.d.streams[stream]) continue;
        let list = byStream.get(stream);
        if (!list) byStream.set(stream, (list = []));
        list.push([r.instance_name, Number(r.stream_id)]);
      }
      for (const [stream, entries] of byStream) this.applyUnconfirmed(stream, entries);
    } catch (e) {
      this.d.logger?.warn({ err: e }, 'replication: could not read stream positions (fresh read)');
    } finally {
      this.freshRunning = undefined;
    }
  }

  /** Asks the typing writer for the rows we missed. */
  async catchUpTyping(): Promise<void> {
    const g = this.d.streams.typing;
    const t = this.d.typing;
    if (!g || !t || this.writes('typing')) return;
    const from = g.getCurrent();
    let res: Awaited<ReturnType<TypingReplicaHooks['fetch']>>;
    try {
      res = await t.fetch(from);
    } catch (e) {
      this.d.logger?.debug({ err: e }, 'replication: typing writer unreachable');
      return;
    }
    const rooms = new Set<string>();
    if (from < res.startedAt) {
      // The writer restarted: what it knew before is gone, so is what we copied.
      for (const r of t.roomsWithTyping()) {
        t.apply(r, [], res.position);
        rooms.add(r);
      }
    }
    for (const r of res.rows) {
      t.apply(r.roomId, r.userIds, r.position);
      rooms.add(r.roomId);
    }
    g.advanceTo(res.position);
    const writer = this.d.writersOf('typing')[0];
    if (writer) {
      const m = this.seenMap('typing');
      m.set(writer, Math.max(m.get(writer) ?? 0, res.position));
    }
    if (rooms.size) this.d.notifier.applyReplicated({ stream: 'typing', position: res.position, rooms: [...rooms] });
  }
}
