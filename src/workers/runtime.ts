/**
 * The worker-mode runtime of one process and the one way services obtain a
 * writer that is local or remote (DESIGN.md §4: "No service asks am I a
 * worker?").
 *
 *   const sendEvent = makeWriter(services, {
 *     stream: 'events',
 *     endpoint: 'send_event',
 *     shardKey: (req) => req.room_id,          // events: sharded by room
 *     local: (req) => persister.persist(req),  // the real write, JSON in and out
 *   });
 *   await sendEvent(req, { txnId });           // local call, or HTTP replication to the writer
 *
 * In the writer process `makeWriter` also registers `local` as the
 * replication endpoint, so remote callers reach it. Without a runtime
 * (unit tests that build services by hand) every call is local.
 */
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/schema.js';
import { ReplicationClient } from './replication-client.js';
import { ReplicationRegistry } from './replication-registry.js';
import type { RedisTransport } from './redis-transport.js';
import { resolveRole, streamWriters, writerOf, type ProcessRole } from './role.js';
import { normaliseInstance, type WriterStream } from './streams.js';
import { randomBytes } from 'node:crypto';
import type { Db } from '../storage/db.js';
import type { StreamIdGenerator } from '../streams/id-generator.js';
import type { NotifiedStream } from '../streams/notifier-types.js';
import { CacheRegistry } from './caches.js';
import { MultiWriterEventsStream } from './events-stream.js';
import type { ProcessMetrics } from './metrics.js';
import type { StreamReplicator } from './stream-replication.js';

export interface WorkerRuntime {
  role: ProcessRole;
  /** Replication endpoints this process answers. */
  replication: ReplicationRegistry;
  /** Calls other processes' replication endpoints. */
  client: ReplicationClient;
  /** The Redis transport, when `redis.enabled`. */
  transport?: RedisTransport;
  /** Per-process caches invalidated across processes (the `caches` stream). */
  caches: CacheRegistry;
  /**
   * Prometheus metrics of this process (served by `type: metrics` listeners).
   * Without such a listener nobody can read them: a no-op stand-in, and
   * prom-client is never loaded.
   */
  metrics: RuntimeMetrics;
  /** Stream replication (worker mode), set by wireReplication. */
  replicator?: StreamReplicator;
  /**
   * Call before serving a read that depends on the current stream positions
   * (/sync, /events, /messages without `from`, ...): in worker mode it reads
   * the positions every writer has recorded (one query, shared by the reads
   * arriving meanwhile), so that a write acknowledged by another process is
   * visible even if its Redis rows are still on their way. Resolves at once
   * without replication.
   */
  freshPositions(): Promise<void>;
  /**
   * Call before a long-poll waits for new events (/sync, /events): in
   * worker mode a process that does not write events hears their rows only
   * while something waits for them (stream-replication.ts, "Following events
   * on demand"); when it did not, this subscribes and reads the events
   * positions first. Resolves at once without replication.
   */
  followEvents(): Promise<void>;
}

/** The parts of ProcessMetrics the rest of the process uses. */
export type RuntimeMetrics = Pick<ProcessMetrics, 'setSources' | 'onRequestDone' | 'replication' | 'render' | 'listen'>;

const NO_METRICS: RuntimeMetrics = {
  setSources: () => {},
  onRequestDone: () => {},
  replication: { published: () => {}, applied: () => {}, caughtUp: () => {} },
  render: async () => ({ contentType: 'text/plain', body: '' }),
  listen: async () => {
    throw new Error('metrics are off: no `type: metrics` listener in the configuration');
  },
};

/** Whether this process has a `type: metrics` listener (the only reader of its metrics). */
function servesMetrics(config: HomeserverConfig): boolean {
  const listeners = (config.worker_app ? config.worker_listeners : config.listeners) ?? [];
  return listeners.some((l) => l.type === 'metrics');
}

/** What makeWriter needs from Services (kept structural so services need not import app/). */
export interface HasWorkerRuntime {
  config: Pick<HomeserverConfig, 'stream_writers'>;
  workers?: WorkerRuntime;
}

export interface RoutedCallDef<Req, Res> {
  /** Replication endpoint name (`/_synapse/replication/<endpoint>/<txnId>`). */
  endpoint: string;
  /** Which instance performs the call for this request. */
  target: (req: Req) => string;
  /** Whether this process answers the endpoint for others (registers `local`). */
  servesRemote: boolean;
  /** The real operation. Request and result must be plain JSON. */
  local: (req: Req) => Promise<Res>;
}

export type RoutedCall<Req, Res> = (req: Req, opts?: { txnId?: string }) => Promise<Res>;

/** A call that runs locally when `target` is this process and over HTTP replication otherwise. */
export function makeRoutedCall<Req, Res>(s: HasWorkerRuntime, def: RoutedCallDef<Req, Res>): RoutedCall<Req, Res> {
  const rt = s.workers;
  if (!rt) return (req) => def.local(req);
  if (def.servesRemote) rt.replication.register(def.endpoint, (body) => def.local(body as Req));
  const me = rt.role.instanceName;
  return async (req, opts) => {
    const target = normaliseInstance(def.target(req));
    if (target === me) return def.local(req);
    return rt.client.call<Res>(target, def.endpoint, req, opts?.txnId);
  };
}

export interface WriterDef<Req, Res> {
  stream: WriterStream;
  endpoint: string;
  /** For `events`: the room id, to pick the room's shard of the writers. */
  shardKey?: (req: Req) => string;
  local: (req: Req) => Promise<Res>;
}

/** A writer's replication answer: the result and the stream positions that cover the write. */
interface WriterReply<Res> {
  result: Res;
  positions?: Record<string, number>;
}

/**
 * A stream write that runs in the stream's writer (for `events`, the room's
 * writer). Read-after-write in worker mode: the writer answers once the
 * stream's readable position covers the write and is recorded in the
 * database (`settleWrite`), and its answer carries the positions, which the
 * calling process applies before returning (`applyWriteReply`): a client
 * that got the answer reads its write through any process.
 */
export function makeWriter<Req, Res>(s: HasWorkerRuntime, def: WriterDef<Req, Res>): RoutedCall<Req, Res> {
  const rt = s.workers;
  if (!rt) return (req) => def.local(req);
  const stream = def.stream as NotifiedStream;
  const me = rt.role.instanceName;
  const writers = streamWriters(s.config)[def.stream];
  const settle = async <T>(result: T): Promise<WriterReply<T>> => {
    const positions = await rt.replicator?.settleWrite(stream);
    return positions ? { result, positions } : { result };
  };
  if (writers.includes(me)) rt.replication.register(def.endpoint, async (body) => settle(await def.local(body as Req)));
  return async (req, opts) => {
    const target = normaliseInstance(writerOf(s.config, def.stream, def.shardKey?.(req)));
    if (target === me) return (await settle(await def.local(req))).result;
    const reply = await rt.client.call<WriterReply<Res>>(target, def.endpoint, req, opts?.txnId);
    await rt.replicator?.applyWriteReply(stream, reply.positions);
    return reply.result;
  };
}

/** A call that always runs on the main process (registration, login, ... where they touch it). */
export function makeMainCall<Req, Res>(s: HasWorkerRuntime, endpoint: string, local: (req: Req) => Promise<Res>): RoutedCall<Req, Res> {
  return makeRoutedCall(s, { endpoint, servesRemote: s.workers?.role.isMain ?? false, target: () => 'master', local });
}

export interface WireWorkersTarget {
  config: HomeserverConfig;
  serverName: string;
  instanceName: string;
  logger: Logger;
  onShutdown: Array<() => Promise<void> | void>;
  workers?: WorkerRuntime;
  /** With both, worker mode on PostgreSQL sets the multi-writer streams (events, device_lists). */
  db?: Db;
  streams?: Partial<Record<NotifiedStream, StreamIdGenerator>>;
}

/** Worker mode proper: several processes share the database and talk through Redis. */
export function isReplicating(s: { config: Pick<HomeserverConfig, 'redis'>; db?: Db }): boolean {
  return !!s.config.redis?.enabled && s.db?.engine === 'postgres';
}

/**
 * Builds this process's runtime: role, replication registry (with the
 * built-in `ping` endpoint), replication client and, when `redis.enabled`,
 * the Redis transport (connected; closed at shutdown).
 */
export async function wireWorkers(s: WireWorkersTarget): Promise<WorkerRuntime> {
  const role = resolveRole(s.config);
  const replication = new ReplicationRegistry();
  // Health and latency probe between processes; its nonce shows idempotency
  // (a retry with the same txnId gets the same nonce back).
  replication.register('ping', () => ({ instance_name: role.instanceName, nonce: randomBytes(8).toString('hex'), ts: Date.now() }));
  const client = new ReplicationClient({ config: s.config, logger: s.logger });
  // prom-client and ioredis are loaded only when used (start-up time and memory of a monolith).
  const metrics: RuntimeMetrics = servesMetrics(s.config) ? new (await import('./metrics.js')).ProcessMetrics(role.instanceName) : NO_METRICS;
  const rt: WorkerRuntime = {
    role,
    replication,
    client,
    caches: new CacheRegistry(),
    metrics,
    freshPositions: () => rt.replicator?.freshPositions() ?? Promise.resolve(),
    followEvents: () => rt.replicator?.followEvents() ?? Promise.resolve(),
  };
  if (isReplicating(s) && s.db && s.streams) {
    // Events: every event persister draws from one sequence; readers expose the minimum.
    s.streams.events = await MultiWriterEventsStream.open(s.db, role.instanceName, streamWriters(s.config).events);
  }
  if (s.config.redis?.enabled) {
    const { RedisTransport } = await import('./redis-transport.js');
    // The events rows go on a channel per persister: followed on demand (stream-replication.ts).
    const transport = new RedisTransport({ serverName: s.serverName, instanceName: role.instanceName, redis: s.config.redis, logger: s.logger, ownChannelStreams: ['events'] });
    await transport.start();
    s.onShutdown.push(() => transport.stop());
    rt.transport = transport;
  }
  s.workers = rt;
  return rt;
}
