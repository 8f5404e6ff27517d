/**
 * Worker-deployment validation (DESIGN.md §6): impossible combinations of the
 * worker keys stop start-up with the key's path and what was expected.
 *
 * `workerDeploymentProblems` checks one process's merged configuration
 * (shared file + its worker file) and is called from `validateConfig`;
 * `workerSetProblems` checks a whole deployment (the shared file and every
 * worker file), for myelinctl and proxy-config.
 */
import type { HomeserverConfig, ListenerConfig } from './schema.js';
import { KNOWN_WORKER_APPS, parseWorkerApp, streamWriters } from '../workers/role.js';
import { isMainInstance, MAIN_INSTANCE, MAIN_INSTANCE_MAP_KEY, MULTI_WRITER_STREAMS, normaliseInstance, WRITER_STREAMS } from '../workers/streams.js';

type Cfg = HomeserverConfig;

export interface InstanceLocation {
  host: string;
  port: number;
  tls: boolean;
}

/**
 * Where an instance's replication listener is. The main process is
 * `instance_map.main` (newer spelling) or `worker_replication_host` +
 * `worker_replication_http_port` (older spelling, in worker files).
 */
export function instanceLocation(cfg: Pick<Cfg, 'instance_map' | 'worker_replication_host' | 'worker_replication_http_port' | 'worker_replication_http_tls'>, name: string): InstanceLocation | undefined {
  const map = cfg.instance_map ?? {};
  if (isMainInstance(name)) {
    const m = map[MAIN_INSTANCE_MAP_KEY] ?? map[MAIN_INSTANCE];
    if (m) return { host: m.host, port: m.port, tls: m.tls ?? false };
    if (cfg.worker_replication_host !== undefined && cfg.worker_replication_http_port !== undefined) {
      return { host: cfg.worker_replication_host, port: cfg.worker_replication_http_port, tls: cfg.worker_replication_http_tls ?? false };
    }
    return undefined;
  }
  const e = map[name];
  return e ? { host: e.host, port: e.port, tls: e.tls ?? false } : undefined;
}

function hasResource(listeners: ListenerConfig[] | undefined, name: string): boolean {
  return (listeners ?? []).some((l) => l.type === 'http' && l.resources.some((r) => r.names.includes(name)));
}

/** Whether this configuration describes a multi-process deployment. */
export function isWorkerDeployment(cfg: Cfg): boolean {
  if (cfg.worker_app !== undefined && parseWorkerApp(cfg.worker_app) !== 'main') return true;
  const writers = streamWriters(cfg);
  if (WRITER_STREAMS.some((s) => writers[s].some((w) => w !== MAIN_INSTANCE))) return true;
  if (Object.keys(cfg.instance_map ?? {}).some((k) => !isMainInstance(k))) return true;
  const named = [
    cfg.run_background_tasks_on,
    cfg.update_user_directory_from_worker,
    cfg.notify_appservices_from_worker,
    cfg.media_instance_running_background_jobs,
    ...(cfg.pusher_instances ?? []),
    ...(cfg.federation_sender_instances ?? []),
  ].filter((n): n is string => n !== undefined);
  if (named.some((n) => !isMainInstance(n))) return true;
  return cfg.start_pushers === false || cfg.send_federation === false;
}

/** Problems of one process's configuration, each `key.path: what was expected`. Empty when fine. */
export function workerDeploymentProblems(cfg: Cfg): string[] {
  const problems: string[] = [];
  const app = parseWorkerApp(cfg.worker_app);
  if (app === undefined) {
    problems.push(`worker_app: unknown worker application "${cfg.worker_app}"; expected one of ${KNOWN_WORKER_APPS.join(', ')}`);
  }
  const isWorker = app !== undefined && app !== 'main';
  if (!isWorkerDeployment(cfg)) return problems;

  if (cfg.database.name === 'sqlite3') {
    problems.push('database: workers need PostgreSQL (database.name: psycopg2); SQLite supports only the single-process deployment');
  }
  if (!cfg.redis?.enabled) {
    problems.push('redis.enabled: must be true when there are workers or stream writers other than the main process (replication runs over Redis)');
  }

  // stream_writers: every writer is in instance_map; only events has several.
  const writers = streamWriters(cfg);
  for (const s of WRITER_STREAMS) {
    const list = writers[s];
    if (list.length > 1 && !MULTI_WRITER_STREAMS.has(s)) {
      problems.push(`stream_writers.${s}: the ${s} stream has a single writer, got ${list.length} (${list.join(', ')}); only events may have several`);
    }
    if (new Set(list).size !== list.length) problems.push(`stream_writers.${s}: a writer is listed twice (${list.join(', ')})`);
    for (const w of list) {
      if (w === MAIN_INSTANCE) continue;
      if (!cfg.instance_map?.[w]) {
        problems.push(`stream_writers.${s}: writer "${w}" is not in instance_map (add instance_map.${w} with the host and port of its replication listener)`);
      }
    }
  }

  // The main process's replication address: both spellings must agree.
  const m = cfg.instance_map?.[MAIN_INSTANCE_MAP_KEY];
  const hasHost = cfg.worker_replication_host !== undefined;
  const hasPort = cfg.worker_replication_http_port !== undefined;
  if (hasHost !== hasPort) {
    problems.push(`${hasHost ? 'worker_replication_http_port' : 'worker_replication_host'}: required together with ${hasHost ? 'worker_replication_host' : 'worker_replication_http_port'}`);
  }
  if (m && hasHost && hasPort && (m.host !== cfg.worker_replication_host || m.port !== cfg.worker_replication_http_port)) {
    problems.push(
      `instance_map.main (${m.host}:${m.port}) and worker_replication_host/worker_replication_http_port (${cfg.worker_replication_host}:${cfg.worker_replication_http_port}) disagree; give one or make them equal`,
    );
  }

  if (isWorker) {
    if (!cfg.worker_name) problems.push('worker_name: required for a worker (a unique name, used in instance_map, stream_writers and logs)');
    else if (isMainInstance(cfg.worker_name)) problems.push(`worker_name: "${cfg.worker_name}" is reserved for the main process`);
    if (!m && !(hasHost && hasPort)) {
      problems.push('instance_map.main: a worker needs the main process\'s replication listener: set instance_map.main (host, port) or worker_replication_host and worker_replication_http_port');
    }
    const name = cfg.worker_name ? normaliseInstance(cfg.worker_name) : undefined;
    const writesSomething = name !== undefined && WRITER_STREAMS.some((s) => writers[s].includes(name));
    if (writesSomething && !hasResource(cfg.worker_listeners, 'replication')) {
      problems.push(`worker_listeners: worker "${name}" is a stream writer and needs an http listener with the replication resource`);
    }
    // The documented "set X: false in the shared configuration" interplay.
    if (app === 'pusher' && cfg.start_pushers !== false && !(cfg.pusher_instances ?? []).length) {
      problems.push('start_pushers: must be false in the shared configuration when a synapse.app.pusher worker sends push notifications (or list the pusher workers in pusher_instances)');
    }
    if (app === 'federation_sender' && cfg.send_federation !== false && !(cfg.federation_sender_instances ?? []).length) {
      problems.push('send_federation: must be false in the shared configuration when a synapse.app.federation_sender worker sends federation traffic (or list the senders in federation_sender_instances)');
    }
    if (app === 'media_repository' && cfg.enable_media_repo !== false) {
      problems.push('enable_media_repo: must be false in the shared configuration when a synapse.app.media_repository worker runs the media repository');
    }
    if (app === 'user_dir' && cfg.update_user_directory !== false && cfg.update_user_directory_from_worker === undefined) {
      problems.push('update_user_directory: must be false in the shared configuration when a synapse.app.user_dir worker updates the user directory');
    }
    if (app === 'appservice' && cfg.notify_appservices !== false && cfg.notify_appservices_from_worker === undefined) {
      problems.push('notify_appservices: must be false in the shared configuration when a synapse.app.appservice worker notifies application services');
    }
  } else if (app === 'main' && !hasResource(cfg.listeners, 'replication')) {
    problems.push('listeners: the main process of a worker deployment needs an http listener with the replication resource');
  }
  return problems;
}

export interface NamedWorkerConfig {
  /** The worker file, for messages. */
  path: string;
  config: Cfg;
}

/**
 * Problems of a whole deployment: the shared configuration and every worker
 * file (each merged over the shared one). Adds cross-file checks: duplicate
 * worker names, writers and named duty instances that no worker file defines.
 */
export function workerSetProblems(shared: Cfg, workers: NamedWorkerConfig[]): string[] {
  const problems = workerDeploymentProblems(shared).map((p) => `(shared) ${p}`);
  const byName = new Map<string, string>();
  for (const w of workers) {
    for (const p of workerDeploymentProblems(w.config)) problems.push(`${w.path}: ${p}`);
    if (w.config.worker_app === undefined) problems.push(`${w.path}: worker_app: required in a worker file`);
    const name = w.config.worker_name;
    if (!name) continue;
    const seen = byName.get(name);
    if (seen) problems.push(`${w.path}: worker_name: "${name}" is already used by ${seen}; worker names must be unique`);
    else byName.set(name, w.path);
  }
  const writers = streamWriters(shared);
  for (const s of WRITER_STREAMS) {
    for (const wname of writers[s]) {
      if (wname !== MAIN_INSTANCE && workers.length && !byName.has(wname)) {
        problems.push(`stream_writers.${s}: no worker file defines worker_name "${wname}"`);
      }
    }
  }
  return [...new Set(problems)];
}
