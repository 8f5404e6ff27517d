/**
 * The homeserver.yaml keys Myelin honours, with Synapse's names and meanings.
 * Validation errors name the key's path and what was expected.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from '../util/sizes.js';

const size = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return parseSize(v);
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a size such as 50M or a number of bytes' });
    return z.NEVER;
  }
});

export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a duration such as 5m, 1h or milliseconds' });
    return z.NEVER;
  }
});

const resource = z
  .object({
    names: z.array(z.string()),
    compress: z.boolean().default(false),
  })
  .strict();

export const listenerSchema = z
  .object({
    port: z.number().int().min(0).max(65535).optional(),
    path: z.string().optional(),
    bind_addresses: z.array(z.string()).optional(),
    bind_address: z.string().optional(),
    type: z.enum(['http', 'metrics', 'manhole']).default('http'),
    tls: z.boolean().default(false),
    x_forwarded: z.boolean().default(false),
    resources: z.array(resource).default([]),
  })
  .strict()
  .refine((l) => l.port !== undefined || l.path !== undefined, { message: 'a listener needs a port (or a unix socket path)' });

export type ListenerConfig = z.infer<typeof listenerSchema>;

const ratelimit = z
  .object({
    per_second: z.number().nonnegative(),
    burst_count: z.number().nonnegative(),
  })
  .strict();

const databaseSchema = z.discriminatedUnion('name', [
  z
    .object({
      name: z.literal('sqlite3'),
      args: z.object({ database: z.string() }).passthrough(),
      allow_unsafe_locale: z.boolean().optional(),
    })
    .strict(),
  z
    .object({
      name: z.enum(['psycopg2', 'postgres', 'postgresql']),
      args: z
        .object({
          user: z.string().optional(),
          password: z.string().optional(),
          database: z.string().optional(),
          dbname: z.string().optional(),
          host: z.string().optional(),
          port: z.number().int().optional(),
          cp_min: z.number().int().min(0).default(1),
          cp_max: z.number().int().min(1).default(10),
        })
        .passthrough()
        .default({}),
      allow_unsafe_locale: z.boolean().optional(),
      txn_limit: z.number().int().optional(),
    })
    .strict(),
]);

export type DatabaseConfig = z.infer<typeof databaseSchema>;

const instanceLocation = z
  .object({ host: z.string(), port: z.number().int(), tls: z.boolean().default(false), path: z.string().optional() })
  .strict();

const redisSchema = z
  .object({
    enabled: z.boolean().default(false),
    host: z.string().default('localhost'),
    port: z.number().int().default(6379),
    password: z.string().optional(),
    dbid: z.number().int().optional(),
    path: z.string().optional(),
  })
  .strict();

const writerList = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

/** Top-level homeserver (and worker) configuration. Unknown keys pass through and warn. */
export const configSchema = z
  .object({
    server_name: z.string().min(1),
    public_baseurl: z.string().url().optional(),
    serve_server_wellknown: z.boolean().default(false),
    listeners: z.array(listenerSchema).default([]),
    database: databaseSchema.default({ name: 'sqlite3', args: { database: 'homeserver.db' } }),
    signing_key_path: z.string().optional(),
    tls_certificate_path: z.string().optional(),
    tls_private_key_path: z.string().optional(),
    registration_shared_secret: z.string().optional(),
    registration_shared_secret_path: z.string().optional(),
    enable_registration: z.boolean().default(false),
    enable_registration_without_verification: z.boolean().default(false),
    registration_requires_token: z.boolean().default(false),
    allow_guest_access: z.boolean().default(false),
    bcrypt_rounds: z.number().int().min(4).max(31).default(12),
    rc_login: z
      .object({ address: ratelimit.optional(), account: ratelimit.optional(), failed_attempts: ratelimit.optional() })
      .strict()
      .default({}),
    rc_registration: ratelimit.default({ per_second: 0.17, burst_count: 3 }),
    rc_message: ratelimit.default({ per_second: 0.2, burst_count: 10 }),
    log_config: z.string().optional(),
    /** Myelin's own shortcut for the root log level (log_config's root level wins when given). */
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
    max_upload_size: size.default('50M'),
    media_store_path: z.string().optional(),
    refreshable_access_token_lifetime: duration.optional(),
    refresh_token_lifetime: duration.optional(),
    session_lifetime: duration.optional(),
    default_room_version: z.string().optional(),
    turn_uris: z.array(z.string()).default([]),
    turn_shared_secret: z.string().optional(),
    turn_username: z.string().optional(),
    turn_password: z.string().optional(),
    turn_user_lifetime: duration.default('1h'),
    turn_allow_guests: z.boolean().default(true),
    user_directory: z
      .object({ enabled: z.boolean().default(true), search_all_users: z.boolean().default(false), prefer_local_users: z.boolean().default(false) })
      .passthrough()
      .default({}),
    presence: z.object({ enabled: z.boolean().default(true) }).passthrough().default({}),
    // Worker mode (see docs/workers.md)
    worker_app: z.string().optional(),
    worker_name: z.string().optional(),
    worker_replication_host: z.string().optional(),
    worker_replication_http_port: z.number().int().optional(),
    worker_replication_http_tls: z.boolean().optional(),
    worker_main_http_uri: z.string().optional(),
    worker_listeners: z.array(listenerSchema).optional(),
    worker_log_config: z.string().optional(),
    worker_daemonize: z.boolean().optional(),
    worker_pid_file: z.string().optional(),
    worker_replication_secret: z.string().optional(),
    redis: redisSchema.default({}),
    instance_map: z.record(instanceLocation).default({}),
    stream_writers: z
      .object({
        events: writerList.optional(),
        typing: writerList.optional(),
        to_device: writerList.optional(),
        account_data: writerList.optional(),
        receipts: writerList.optional(),
        presence: writerList.optional(),
        push_rules: writerList.optional(),
        device_lists: writerList.optional(),
      })
      .strict()
      .default({}),
    run_background_tasks_on: z.string().default('master'),
    update_user_directory_from_worker: z.string().optional(),
    update_user_directory: z.boolean().optional(),
    notify_appservices_from_worker: z.string().optional(),
    notify_appservices: z.boolean().optional(),
    start_pushers: z.boolean().optional(),
    pusher_instances: z.array(z.string()).optional(),
    send_federation: z.boolean().optional(),
    federation_sender_instances: z.array(z.string()).optional(),
    enable_media_repo: z.boolean().optional(),
    media_instance_running_background_jobs: z.string().optional(),
    pid_file: z.string().optional(),
    report_stats: z.boolean().optional(),
  })
  .passthrough();

export type HomeserverConfig = z.infer<typeof configSchema>;

export const KNOWN_TOP_LEVEL_KEYS: ReadonlySet<string> = new Set(Object.keys(configSchema.shape));
