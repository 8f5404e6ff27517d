/**
 * A process's role, from its configuration (DESIGN.md §5): which worker
 * application it is, which streams it writes and which background duties it
 * runs. Pure functions of the (merged shared + worker) configuration.
 *
 * The duties follow the worker documentation, including the "set X: false
 * on the main process" interplay:
 *
 * | duty                | moved by                                       | main keeps it unless          |
 * |---------------------|------------------------------------------------|-------------------------------|
 * | background tasks    | run_background_tasks_on: NAME                  | NAME is not master            |
 * | pushers             | synapse.app.pusher / pusher_instances          | start_pushers: false, or pusher_instances without master |
 * | federation sending  | synapse.app.federation_sender / federation_sender_instances | send_federation: false, or instances without master |
 * | media repository    | synapse.app.media_repository                   | enable_media_repo: false      |
 * | media background    | media_instance_running_background_jobs: NAME  | NAME names another instance   |
 * | user directory      | update_user_directory_from_worker: NAME, or synapse.app.user_dir with update_user_directory: false | either is set |
 * | appservice traffic  | notify_appservices_from_worker: NAME, or synapse.app.appservice with notify_appservices: false | either is set |
 */
import { createHash } from 'node:crypto';
import type { HomeserverConfig } from '../config/schema.js';
import { crc32 } from '../util/crc32.js';
import { MAIN_INSTANCE, normaliseInstance, WRITER_STREAMS, type WriterStream } from './streams.js';

export type WorkerApp = 'main' | 'generic_worker' | 'pusher' | 'federation_sender' | 'media_repository' | 'appservice' | 'user_dir';

/** Historical names that now mean synapse.app.generic_worker. */
const HISTORICAL_GENERIC = ['client_reader', 'event_creator', 'federation_reader', 'frontend_proxy', 'synchrotron'];
const APPS: readonly WorkerApp[] = ['generic_worker', 'pusher', 'federation_sender', 'media_repository', 'appservice', 'user_dir'];

export const KNOWN_WORKER_APPS: readonly string[] = [...APPS, ...HISTORICAL_GENERIC].map((a) => `synapse.app.${a}`);

/**
 * `worker_app` to an application, accepting `synapse.app.X`, `myelin.app.X`
 * and the bare `X`; undefined for an unknown name.
 */
export function parseWorkerApp(value: string | undefined): WorkerApp | undefined {
  if (value === undefined || value === '') return 'main';
  const bare = value.replace(/^(synapse|myelin)\.app\./, '');
  if (bare === 'homeserver') return 'main'; // synapse.app.homeserver is the main process
  if (HISTORICAL_GENERIC.includes(bare)) return 'generic_worker';
  return (APPS as readonly string[]).includes(bare) ? (bare as WorkerApp) : undefined;
}

/** The configuration keys roles depend on (a subset of the homeserver config). */
export type RoleConfig = Pick<
  HomeserverConfig,
  | 'worker_app'
  | 'worker_name'
  | 'stream_writers'
  | 'run_background_tasks_on'
  | 'update_user_directory_from_worker'
  | 'update_user_directory'
  | 'notify_appservices_from_worker'
  | 'notify_appservices'
  | 'start_pushers'
  | 'pusher_instances'
  | 'send_federation'
  | 'federation_sender_instances'
  | 'enable_media_repo'
  | 'media_instance_running_background_jobs'
>;

export interface ProcessRole {
  /** `master` for the main process, else worker_name. */
  instanceName: string;
  app: WorkerApp;
  isMain: boolean;
  /** Streams this instance writes (for events: it is one of the writers). */
  writes: ReadonlySet<WriterStream>;
  runsBackgroundTasks: boolean;
  /** Sends push notifications (for the users that `pusherShardOf` gives this instance). */
  startsPushers: boolean;
  /** Sends federation traffic (for the destinations `federationShardOf` gives this instance). */
  sendsFederation: boolean;
  /** Serves the media repository endpoints. */
  servesMedia: boolean;
  runsMediaBackgroundJobs: boolean;
  updatesUserDirectory: boolean;
  notifiesAppservices: boolean;
}

// Every forwarded write asks for its writer: the answer is worked out once
// per configuration (and its `stream_writers` value), and frozen.
const writersOf = new WeakMap<object, { from: unknown; writers: Record<WriterStream, string[]> }>();

/** The writers of each stream, normalised (`main` -> `master`), default the main process (frozen). */
export function streamWriters(cfg: Pick<HomeserverConfig, 'stream_writers'>): Record<WriterStream, string[]> {
  const memo = writersOf.get(cfg);
  if (memo && memo.from === cfg.stream_writers) return memo.writers;
  const writers = computeStreamWriters(cfg);
  writersOf.set(cfg, { from: cfg.stream_writers, writers });
  return writers;
}

function computeStreamWriters(cfg: Pick<HomeserverConfig, 'stream_writers'>): Record<WriterStream, string[]> {
  const out = {} as Record<WriterStream, string[]>;
  for (const s of WRITER_STREAMS) {
    const v = (cfg.stream_writers as Partial<Record<WriterStream, string | string[]>> | undefined)?.[s];
    const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
    out[s] = Object.freeze(list.length ? list.map(normaliseInstance) : [MAIN_INSTANCE]) as string[];
  }
  return Object.freeze(out);
}

export function resolveRole(cfg: RoleConfig): ProcessRole {
  const app = parseWorkerApp(cfg.worker_app);
  if (app === undefined) throw new Error(`worker_app: unknown worker application ${cfg.worker_app}`);
  const isMain = app === 'main';
  const instanceName = isMain ? MAIN_INSTANCE : (cfg.worker_name ?? cfg.worker_app ?? 'worker');
  const me = (name: string | undefined) => name !== undefined && normaliseInstance(name) === instanceName;
  const listed = (list: string[] | undefined) => (list ?? []).map(normaliseInstance);

  const writers = streamWriters(cfg);
  const writes = new Set<WriterStream>(WRITER_STREAMS.filter((s) => writers[s].includes(instanceName)));

  // Pushers: the pusher app (or, in the newer style, any instance listed in
  // pusher_instances); the main process unless start_pushers: false or the
  // instances list other processes.
  const pusherInstances = listed(cfg.pusher_instances);
  const startsPushers = isMain
    ? cfg.start_pushers !== false && (pusherInstances.length === 0 || pusherInstances.includes(MAIN_INSTANCE))
    : app === 'pusher'
      ? pusherInstances.length === 0 || pusherInstances.includes(instanceName)
      : pusherInstances.includes(instanceName);

  const fedInstances = listed(cfg.federation_sender_instances);
  const sendsFederation = isMain
    ? cfg.send_federation !== false && (fedInstances.length === 0 || fedInstances.includes(MAIN_INSTANCE))
    : app === 'federation_sender'
      ? fedInstances.length === 0 || fedInstances.includes(instanceName)
      : fedInstances.includes(instanceName);

  const servesMedia = app === 'media_repository' || (isMain && cfg.enable_media_repo !== false);
  const mediaBg = cfg.media_instance_running_background_jobs;
  const runsMediaBackgroundJobs = servesMedia && (mediaBg === undefined ? true : me(mediaBg));

  let updatesUserDirectory: boolean;
  if (cfg.update_user_directory_from_worker !== undefined) updatesUserDirectory = me(cfg.update_user_directory_from_worker);
  else if (app === 'user_dir') updatesUserDirectory = cfg.update_user_directory === false;
  else updatesUserDirectory = isMain && cfg.update_user_directory !== false;

  let notifiesAppservices: boolean;
  if (cfg.notify_appservices_from_worker !== undefined) notifiesAppservices = me(cfg.notify_appservices_from_worker);
  else if (app === 'appservice') notifiesAppservices = cfg.notify_appservices === false;
  else notifiesAppservices = isMain && cfg.notify_appservices !== false;

  return {
    instanceName,
    app,
    isMain,
    writes,
    runsBackgroundTasks: me(cfg.run_background_tasks_on ?? MAIN_INSTANCE),
    startsPushers,
    sendsFederation,
    servesMedia,
    runsMediaBackgroundJobs,
    updatesUserDirectory,
    notifiesAppservices,
  };
}

/**
 * Picks one of `instances` for `key`, stably: the first 6 bytes of
 * SHA-256(key) read as a big-endian integer, modulo the number of instances
 * (pushers by user id, federation senders by destination: keys that differ
 * in one character spread as well as any). Every process computes the same
 * answer from the same configuration; the answer changes when the list
 * changes (restart every process then, as the worker documentation says for
 * pushers and federation senders).
 */
export function shardFor(key: string, instances: readonly string[]): string {
  if (instances.length === 0) throw new Error('shardFor: no instances');
  if (instances.length === 1) return instances[0]!;
  const n = createHash('sha256').update(key, 'utf8').digest().readUIntBE(0, 6);
  return instances[n % instances.length]!;
}

/**
 * The events writer of a room among `writers` (`stream_writers.events`),
 * picked exactly as nginx's `hash KEY;` (not `consistent`) picks its first
 * server among equal-weight servers declared in the same order:
 * ((CRC-32(room id) >>> 16) & 0x7fff) modulo the number of writers, CRC-32
 * (IEEE) of the id's UTF-8 bytes. So nginx sends a room's requests straight
 * to the room's persister (src/workers/nginx.ts). Room ids are random, so
 * the weakness of a linear hash (ids differing in one character may share a
 * writer) does not matter here. The answer changes when the list changes
 * (restart every process then, as the worker documentation says).
 */
export function roomShardFor(roomId: string, writers: readonly string[]): string {
  if (writers.length === 0) throw new Error('roomShardFor: no writers');
  if (writers.length === 1) return writers[0]!;
  return writers[((crc32(roomId) >>> 16) & 0x7fff) % writers.length]!;
}

/** The events writer of a room: its shard of `stream_writers.events`. */
export function eventsWriterForRoom(cfg: Pick<HomeserverConfig, 'stream_writers'>, roomId: string): string {
  return roomShardFor(roomId, streamWriters(cfg).events);
}

/** The writer of a single-writer stream (or of `events` for a room when a key is given). */
export function writerOf(cfg: Pick<HomeserverConfig, 'stream_writers'>, stream: WriterStream, shardKey?: string): string {
  const writers = streamWriters(cfg)[stream];
  if (shardKey === undefined) return writers[0]!;
  return stream === 'events' ? roomShardFor(shardKey, writers) : shardFor(shardKey, writers);
}

/** Whether this process sends the pushes of a user (it runs pushers and the user falls in its shard). */
export function sendsPushesFor(role: ProcessRole, cfg: RoleConfig, userId: string): boolean {
  const list = (cfg.pusher_instances ?? []).map(normaliseInstance);
  return role.startsPushers && (list.length === 0 || shardFor(userId, list) === role.instanceName);
}

/** Whether this process sends federation traffic to a destination (sharded by destination). */
export function sendsFederationTo(role: ProcessRole, cfg: RoleConfig, destination: string): boolean {
  const list = (cfg.federation_sender_instances ?? []).map(normaliseInstance);
  return role.sendsFederation && (list.length === 0 || shardFor(destination, list) === role.instanceName);
}
