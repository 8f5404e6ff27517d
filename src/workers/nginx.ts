/**
 * Generates an nginx configuration for a worker deployment FROM the routing
 * table (routing-table.ts), so that the proxy and the workers always agree:
 *
 * - stream-writer endpoints (typing, sendToDevice, account data and tags,
 *   receipts and read markers, presence) go to their writer's client listener;
 * - the generic worker endpoints go to pools of generic workers, balanced by
 *   category: /sync sticky per user (the `syt_<localpart>_` prefix of the
 *   access token, from the Authorization header or the access_token query
 *   parameter, extracted with `map`), initial syncs (no `since`) optionally
 *   on their own pool, inbound federation /send/ by source address, event
 *   sending and /messages by the room id in the URI, the rest round robin;
 * - event sending, when its pool is not given and every event persister is
 *   a generic worker with a client listener, straight to the room's
 *   persister: the upstream lists the persisters in `stream_writers.events`
 *   order and hashes the room id as `roomShardFor` does (plain `hash`, not
 *   `consistent`), so no process forwards the write over replication;
 * - media to media_repository workers when there are some;
 * - everything else (including SSO, which must stay on one process) to the
 *   main process;
 * - replication listeners are never proxied, and /_synapse/replication/ is
 *   refused.
 */
import { isIP } from 'node:net';
import type { HomeserverConfig, ListenerConfig } from '../config/schema.js';
import { parseWorkerApp, streamWriters } from './role.js';
import { ROUTING_TABLE, type RouteCategory, type RoutingEntry } from './routing-table.js';
import { MAIN_INSTANCE, type WriterStream } from './streams.js';

export type PoolName = 'sync' | 'initial_sync' | 'federation' | 'federation_inbound' | 'client' | 'login' | 'event_sending' | 'pagination';
export const POOL_NAMES: readonly PoolName[] = ['sync', 'initial_sync', 'federation', 'federation_inbound', 'client', 'login', 'event_sending', 'pagination'];

export interface NginxOptions {
  /** `listen` value of the server block (default 8008). */
  listen?: string | number;
  /** server_name of the server block (default the homeserver's server_name). */
  serverName?: string;
  /** Worker names per pool; pools not given use every generic worker with a matching listener. */
  pools?: Partial<Record<PoolName, string[]>>;
  /** Wrap in a complete nginx.conf (events + http) with these paths, e.g. for `nginx -t -c`. */
  standalone?: { prefix: string };
}

export interface WorkerEntry {
  path: string;
  config: HomeserverConfig;
}

/** Which pool serves each category (categories not listed stay on the main process). */
const CATEGORY_POOL: Partial<Record<RouteCategory, PoolName>> = {
  sync: 'sync',
  federation: 'federation',
  federation_transaction: 'federation_inbound',
  client: 'client',
  encryption: 'client',
  login: 'login',
  event_sending: 'event_sending',
  account_data: 'client',
  receipts: 'client',
  presence: 'client',
  user_directory: 'client',
  push_rules_read: 'client',
  pagination: 'pagination',
};

type Resource = 'client' | 'federation';

function poolResource(pool: PoolName): Resource {
  return pool === 'federation' || pool === 'federation_inbound' ? 'federation' : 'client';
}

/** `host:port` of the first http listener serving `resource` (wildcard binds become loopback). */
export function listenerAddress(listeners: ListenerConfig[] | undefined, resource: string): string | undefined {
  for (const l of listeners ?? []) {
    if (l.type !== 'http' || l.port === undefined) continue;
    const names = l.resources.flatMap((r) => r.names);
    if (!names.includes(resource)) continue;
    if (names.includes('replication')) continue; // never expose a replication listener
    let host = l.bind_addresses?.[0] ?? l.bind_address ?? '127.0.0.1';
    if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
    if (host === '::') host = '[::1]';
    else if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
    return `${host}:${l.port}`;
  }
  return undefined;
}

function upstreamName(s: string): string {
  return `myelin_${s.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

class Out {
  lines: string[] = [];
  constructor(private indent = 0) {}
  line(s = ''): void {
    this.lines.push(s ? '    '.repeat(this.indent) + s : '');
  }
  block(head: string, body: () => void): void {
    this.line(`${head} {`);
    this.indent++;
    body();
    this.indent--;
    this.line('}');
  }
}

export class NginxConfigError extends Error {}

/**
 * The event persisters (`stream_writers.events`, in order) when every one is a
 * generic worker with a client listener bound to an IP address, else undefined (the main process
 * among them, a persister without one, or one no worker file defines).
 */
function eventPersistersWithClientListener(events: readonly string[], byName: ReadonlyMap<string, WorkerEntry>): string[] | undefined {
  for (const name of events) {
    const w = name === MAIN_INSTANCE ? undefined : byName.get(name);
    const addr = w && parseWorkerApp(w.config.worker_app) === 'generic_worker' ? listenerAddress(w.config.worker_listeners, 'client') : undefined;
    // nginx makes one server per address of a host name (localhost: 127.0.0.1
    // and ::1), which would shift its pick away from roomShardFor's.
    if (!addr || !isIP(addr.slice(0, addr.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1'))) return undefined;
  }
  return events.length ? [...events] : undefined;
}

/** The processes' limit on non-media request bodies (src/app/homeserver.ts JSON_BODY_LIMIT, 1 MiB). */
const JSON_BODY_LIMIT_MB = 1;
/** Where media bodies (up to max_upload_size) arrive, when the main process serves the repository. */
const MEDIA_UPLOAD_PATHS = '^/_matrix/(media/|client/v1/media/|federation/v1/media/)';

export function generateNginxConfig(shared: HomeserverConfig, workers: WorkerEntry[], opts: NginxOptions = {}): string {
  const mainClient = listenerAddress(shared.listeners, 'client');
  if (!mainClient) throw new NginxConfigError('the main process has no http listener with the client resource (listeners)');
  const mainFederation = listenerAddress(shared.listeners, 'federation') ?? mainClient;

  const byName = new Map<string, WorkerEntry>();
  for (const w of workers) if (w.config.worker_name) byName.set(w.config.worker_name, w);
  const generic = workers.filter((w) => parseWorkerApp(w.config.worker_app) === 'generic_worker');
  const media = workers.filter((w) => parseWorkerApp(w.config.worker_app) === 'media_repository');

  const writers = streamWriters(shared);
  // Event sending straight to the room's persister, when every persister can take client requests.
  const persisters = opts.pools?.event_sending ? undefined : eventPersistersWithClientListener(writers.events, byName);

  // Pools: members and their addresses for the pool's resource.
  const pools = new Map<PoolName, string[]>();
  for (const pool of POOL_NAMES) {
    const res = poolResource(pool);
    const names =
      opts.pools?.[pool] ??
      (pool === 'initial_sync' ? undefined : pool === 'event_sending' && persisters ? persisters : generic.map((w) => w.config.worker_name!).filter(Boolean));
    if (!names) continue;
    const addrs: string[] = [];
    for (const n of names) {
      const w = byName.get(n);
      if (!w) throw new NginxConfigError(`pool ${pool}: no worker file defines worker_name "${n}"`);
      const a = listenerAddress(w.config.worker_listeners, res);
      if (a) addrs.push(a);
      else if (opts.pools?.[pool]) throw new NginxConfigError(`pool ${pool}: worker "${n}" has no http listener with the ${res} resource`);
    }
    if (addrs.length) pools.set(pool, addrs);
  }

  // Writers of the streams that have endpoints.
  const writerUpstream = new Map<WriterStream, string>();
  const writerAddrs = new Map<string, string>();
  for (const stream of ['typing', 'to_device', 'account_data', 'receipts', 'presence'] as WriterStream[]) {
    const w = writers[stream][0]!;
    if (w === MAIN_INSTANCE) {
      writerUpstream.set(stream, 'myelin_main');
      continue;
    }
    const entry = byName.get(w);
    const addr = entry ? listenerAddress(entry.config.worker_listeners, 'client') : undefined;
    if (addr) {
      writerAddrs.set(w, addr);
      writerUpstream.set(stream, upstreamName(`writer_${w}`));
    } else if (stream === 'typing' || stream === 'to_device') {
      throw new NginxConfigError(
        `stream_writers.${stream}: writer "${w}" ${entry ? 'has no http listener with the client resource (its endpoints must reach it)' : 'is not defined by any worker file'}`,
      );
    }
    // account_data, receipts, presence without a client listener: any generic worker serves them.
  }

  const out = new Out(opts.standalone ? 1 : 0);
  const up = (name: string, addrs: string[], balance?: string, comment: string[] = []) =>
    out.block(`upstream ${name}`, () => {
      for (const c of comment) out.line(`# ${c}`);
      if (balance) out.line(`${balance};`);
      for (const a of addrs) out.line(`server ${a};`);
      out.line('keepalive 16;');
    });

  out.line('# Generated by `myelin proxy-config --nginx` from the routing table. Do not edit by hand:');
  out.line('# regenerate it when workers or stream writers change.');
  if (!opts.standalone) out.line("# Routing is a list of regex locations: `pcre_jit on;` in nginx.conf's main context makes them cheaper.");
  out.line();
  out.line('# /sync affinity: the access token prefix syt_<localpart>_ (header or access_token query).');
  out.block('map $http_authorization $myelin_token_user_header', () => {
    out.line('default "";');
    out.line('"~*^Bearer +syt_([^_]+)_" $1;');
    out.line('"~*^Bearer +(.+)$" $1;');
  });
  out.block('map $arg_access_token $myelin_token_user_query', () => {
    out.line('default "";');
    out.line('"~^syt_([^_]+)_" $1;');
    out.line('"~^(.+)$" $1;');
  });
  out.block('map "$myelin_token_user_header$myelin_token_user_query" $myelin_sync_user', () => {
    out.line('"" $remote_addr;');
    out.line('default "$myelin_token_user_header$myelin_token_user_query";');
  });
  out.line('# Event sending and pagination affinity: the room id (or alias) in the URI.');
  out.block('map $uri $myelin_room_id', () => {
    out.line('default $uri;');
    out.line('"~/rooms/([^/]+)" $1;');
    out.line('"~/join/([^/]+)" $1;');
  });
  const initial = pools.has('initial_sync');
  if (initial) {
    out.line('# Initial syncs (no `since`) go to their own pool.');
    out.block('map $arg_since $myelin_sync_upstream', () => {
      out.line('"" myelin_initial_sync;');
      out.line('default myelin_sync;');
    });
  }
  out.block('map $request_method $myelin_pushrules_upstream', () => {
    out.line(`GET ${pools.has('client') ? 'myelin_client' : 'myelin_main'};`);
    out.line('default myelin_main;');
  });
  out.line();

  up('myelin_main', [mainClient]);
  if (mainFederation !== mainClient) up('myelin_main_federation', [mainFederation]);
  const balance: Record<PoolName, string | undefined> = {
    sync: 'hash $myelin_sync_user consistent',
    initial_sync: 'hash $myelin_sync_user consistent',
    federation: undefined,
    federation_inbound: 'hash $remote_addr consistent',
    client: undefined,
    // By client address: rate limits per address (and per account from one
    // address) are kept by each process, so one client must meet one process.
    login: 'hash $remote_addr consistent',
    // To the persisters: plain `hash`, nginx's pick being roomShardFor's (src/workers/role.ts).
    event_sending: persisters ? 'hash $myelin_room_id' : 'hash $myelin_room_id consistent',
    pagination: 'hash $myelin_room_id consistent',
  };
  const comments: Partial<Record<PoolName, string[]>> = {
    event_sending: persisters
      ? [
          'The event persisters, in stream_writers.events order. Plain `hash` (not `consistent`)',
          'picks the same persister as Myelin does (from the CRC-32 of the room id), so each room goes',
          'straight to the persister that owns it; if that one is down, nginx tries another, which',
          'forwards the request over replication. Keep this order and do not add servers by hand.',
        ]
      : [],
  };
  for (const [pool, addrs] of pools) up(`myelin_${pool}`, addrs, balance[pool], comments[pool]);
  for (const [w, addr] of writerAddrs) up(upstreamName(`writer_${w}`), [addr]);
  const mediaAddrs = media.map((w) => listenerAddress(w.config.worker_listeners, 'media')).filter((a): a is string => !!a);
  if (mediaAddrs.length) up('myelin_media', mediaAddrs);
  out.line();

  /** Where an entry goes; undefined: the main process (the catch-all). */
  const targetOf = (e: RoutingEntry): string | undefined => {
    switch (e.owner.kind) {
      case 'stream':
        return writerUpstream.get(e.owner.stream);
      case 'media_repository':
        return mediaAddrs.length ? 'myelin_media' : undefined;
      case 'user_dir':
        return undefined; // the generic entry for the same pattern routes it
      case 'generic': {
        const pool = CATEGORY_POOL[e.category];
        if (!pool || !pools.has(pool)) return undefined;
        if (e.category === 'push_rules_read') return '$myelin_pushrules_upstream';
        if (e.category === 'sync' && initial) return /initialSync\$$/.test(e.pattern) ? 'myelin_initial_sync' : /\/sync\$$/.test(e.pattern) ? '$myelin_sync_upstream' : 'myelin_sync';
        return `myelin_${pool}`;
      }
    }
  };

  const maxBody = Math.ceil((shared.max_upload_size ?? 50 * 1024 * 1024) / (1024 * 1024));
  out.block('server', () => {
    out.line(`listen ${opts.listen ?? 8008};`);
    out.line(`server_name ${opts.serverName ?? shared.server_name};`);
    // The processes take JSON bodies up to 1 MiB (JSON_BODY_LIMIT) and media
    // uploads up to max_upload_size. nginx refuses larger bodies itself: a
    // process that answers 413 before reading the whole body would otherwise
    // reach the client as a 502 (nginx still writing the body to it).
    out.line(`client_max_body_size ${JSON_BODY_LIMIT_MB}M;`);
    out.line('proxy_http_version 1.1;');
    out.line('proxy_set_header Connection "";');
    out.line('proxy_set_header Host $host;');
    out.line('proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;');
    out.line('proxy_set_header X-Forwarded-Proto $scheme;');
    out.line('proxy_read_timeout 600s;');
    out.line('proxy_buffering off;');
    out.line();
    // nginx's own errors (a process down, a body over client_max_body_size)
    // as Matrix errors, not HTML; errors from the processes pass through as they are.
    out.line('# nginx\'s own errors as Matrix JSON.');
    // A request nginx itself finds malformed (NUL or bad percent-encoding in
    // the path, a broken request line) never reaches a process. A named
    // location cannot serve a 400 error_page (nginx answers 500), an
    // internal URI location can.
    out.line('error_page 400 /_myelin_internal/bad_request;');
    out.line('error_page 413 @myelin_too_large;');
    out.line('error_page 502 503 504 @myelin_unavailable;');
    out.block('location = /_myelin_internal/bad_request', () => {
      out.line('internal;');
      out.line('default_type application/json;');
      out.line('return 400 \'{"errcode":"M_INVALID_PARAM","error":"Malformed request"}\';');
    });
    out.block('location @myelin_too_large', () => {
      out.line('default_type application/json;');
      out.line('return 413 \'{"errcode":"M_TOO_LARGE","error":"Request body too large"}\';');
    });
    out.block('location @myelin_unavailable', () => {
      out.line('default_type application/json;');
      out.line('return 502 \'{"errcode":"M_UNKNOWN","error":"The server is temporarily unavailable"}\';');
    });
    out.line('# Internal: never proxied.');
    out.block('location ^~ /_synapse/replication/', () => {
      out.line('default_type application/json;');
      out.line('return 404 \'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}\';');
    });
    // Stream writers first: their patterns overlap the generic list, and nginx takes the first regex that matches.
    const ordered = [...ROUTING_TABLE.filter((e) => e.owner.kind === 'stream'), ...ROUTING_TABLE.filter((e) => e.owner.kind !== 'stream')];
    const done = new Set<string>();
    let lastCategory = '';
    for (const e of ordered) {
      if (done.has(e.pattern)) continue;
      const target = targetOf(e);
      if (!target) continue;
      done.add(e.pattern);
      const heading = `${e.owner.kind === 'stream' ? 'stream writer: ' : ''}${e.category}`;
      if (heading !== lastCategory) {
        out.line(`# ${heading}`);
        lastCategory = heading;
      }
      out.block(`location ~ "${e.pattern}"`, () => {
        if (e.owner.kind === 'media_repository') out.line(`client_max_body_size ${maxBody}M;`);
        out.line(`proxy_pass http://${target};`);
      });
    }
    out.line('# Everything else: the main process.');
    if (!mediaAddrs.length) {
      out.block(`location ~ "${MEDIA_UPLOAD_PATHS}"`, () => {
        out.line(`client_max_body_size ${maxBody}M;`);
        out.line('proxy_pass http://myelin_main;');
      });
    }
    if (mainFederation !== mainClient) {
      out.block('location /_matrix/federation/', () => out.line('proxy_pass http://myelin_main_federation;'));
      out.block('location /_matrix/key/', () => out.line('proxy_pass http://myelin_main_federation;'));
    }
    out.block('location /', () => out.line('proxy_pass http://myelin_main;'));
  });

  const body = out.lines.join('\n') + '\n';
  if (!opts.standalone) return body;
  const p = opts.standalone.prefix.replace(/\/$/, '');
  return [
    `pid ${p}/nginx.pid;`,
    `error_log ${p}/error.log warn;`,
    'worker_processes 1;',
    // The routing table is a list of regex locations, tried in order (event
    // sending comes after most of them): compiled by PCRE's JIT, nginx spends
    // about a fifth less CPU on such a request (measured in isolation). Main context only, so the
    // http-context output can only say so in a comment.
    'pcre_jit on;',
    'events {',
    '    worker_connections 1024;',
    '}',
    'http {',
    `    access_log ${p}/access.log;`,
    `    client_body_temp_path ${p}/client_body;`,
    `    proxy_temp_path ${p}/proxy;`,
    `    fastcgi_temp_path ${p}/fastcgi;`,
    `    uwsgi_temp_path ${p}/uwsgi;`,
    `    scgi_temp_path ${p}/scgi;`,
    body + '}',
    '',
  ].join('\n');
}
