/**
 * THE routing table of worker mode (DESIGN.md §5): the endpoint patterns of
 * Synapse's worker documentation ("Scaling synapse via workers"), verbatim,
 * per worker type and per stream writer. Workers mount their routes from it
 * (route-filter.ts), the nginx generator (nginx.ts) routes from it, and a test
 * checks the two against each other.
 *
 * Each entry carries a category: how a reverse proxy may balance the requests
 * (sync sticky per user, inbound federation transactions by source address,
 * event sending and pagination by room, the rest round robin).
 */
import type { WriterStream } from './streams.js';

export type RouteCategory =
  /** /sync, /events, /initialSync: sticky per user; initial syncs (no `since`) may get their own pool. */
  | 'sync'
  | 'federation'
  /** Inbound federation transactions (/send/): balanced by source address. */
  | 'federation_transaction'
  | 'client'
  | 'encryption'
  | 'login'
  /** Event sending: balanced by the room id in the URI. */
  | 'event_sending'
  | 'account_data'
  | 'receipts'
  | 'presence'
  | 'user_directory'
  /** GET only. */
  | 'push_rules_read'
  /** /messages: all requests for one room must reach the same instance. */
  | 'pagination'
  | 'sso'
  | 'typing'
  | 'to_device'
  | 'media'
  | 'media_admin';

/** Who serves an entry. */
export type RouteOwner =
  | { kind: 'generic' }
  /** Served by the writer of this stream (and routed there by the proxy). */
  | { kind: 'stream'; stream: WriterStream }
  | { kind: 'media_repository' }
  | { kind: 'user_dir' };

export interface RoutingEntry {
  /** The documented regular expression, verbatim (matched against the request path). */
  pattern: string;
  category: RouteCategory;
  owner: RouteOwner;
  /** Only these methods (default: all). */
  methods?: readonly string[];
  /** Not in the 1.67 worker page: a Myelin addition, said why in `note`. */
  extension?: boolean;
  note?: string;
}

const G = { kind: 'generic' } as const;
const S = (stream: WriterStream) => ({ kind: 'stream', stream }) as const;
const MEDIA = { kind: 'media_repository' } as const;
const USER_DIR = { kind: 'user_dir' } as const;

function group(category: RouteCategory, owner: RouteOwner, patterns: string[], extra: Partial<RoutingEntry> = {}): RoutingEntry[] {
  return patterns.map((pattern) => ({ pattern, category, owner, ...extra }));
}

/** synapse.app.generic_worker (and the historical apps that mean the same). */
export const GENERIC_WORKER_ROUTES: readonly RoutingEntry[] = [
  // Sync requests
  ...group('sync', G, [
    '^/_matrix/client/(r0|v3)/sync$',
    '^/_matrix/client/(api/v1|r0|v3)/events$',
    '^/_matrix/client/(api/v1|r0|v3)/initialSync$',
    '^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$',
  ]),
  // Federation requests
  ...group('federation', G, [
    '^/_matrix/federation/v1/event/',
    '^/_matrix/federation/v1/state/',
    '^/_matrix/federation/v1/state_ids/',
    '^/_matrix/federation/v1/backfill/',
    '^/_matrix/federation/v1/get_missing_events/',
    '^/_matrix/federation/v1/publicRooms',
    '^/_matrix/federation/v1/query/',
    '^/_matrix/federation/v1/make_join/',
    '^/_matrix/federation/v1/make_leave/',
    '^/_matrix/federation/(v1|v2)/send_join/',
    '^/_matrix/federation/(v1|v2)/send_leave/',
    '^/_matrix/federation/(v1|v2)/invite/',
    '^/_matrix/federation/v1/event_auth/',
    '^/_matrix/federation/v1/exchange_third_party_invite/',
    '^/_matrix/federation/v1/user/devices/',
    '^/_matrix/key/v2/query',
    '^/_matrix/federation/v1/hierarchy/',
  ]),
  // Inbound federation transaction request
  ...group('federation_transaction', G, ['^/_matrix/federation/v1/send/']),
  // Client API requests
  ...group('client', G, [
    '^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$',
    '^/_matrix/client/v1/rooms/.*/hierarchy$',
    '^/_matrix/client/unstable/org.matrix.msc2716/rooms/.*/batch_send$',
    '^/_matrix/client/unstable/im.nheko.summary/rooms/.*/summary$',
    '^/_matrix/client/(r0|v3|unstable)/account/3pid$',
    '^/_matrix/client/(r0|v3|unstable)/account/whoami$',
    '^/_matrix/client/(r0|v3|unstable)/devices$',
    '^/_matrix/client/versions$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/search$',
  ]),
  // Encryption requests (keys/upload needs worker_main_http_uri in Synapse;
  // Myelin forwards the write over HTTP replication instead).
  ...group('encryption', G, [
    '^/_matrix/client/(r0|v3|unstable)/keys/query$',
    '^/_matrix/client/(r0|v3|unstable)/keys/changes$',
    '^/_matrix/client/(r0|v3|unstable)/keys/claim$',
    '^/_matrix/client/(r0|v3|unstable)/room_keys/',
    '^/_matrix/client/(r0|v3|unstable)/keys/upload/',
  ]),
  // Registration/login requests
  ...group('login', G, [
    '^/_matrix/client/(api/v1|r0|v3|unstable)/login$',
    '^/_matrix/client/(r0|v3|unstable)/register$',
    '^/_matrix/client/v1/register/m.login.registration_token/validity$',
  ]),
  // Event sending requests
  ...group('event_sending', G, [
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/join/',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/profile/',
  ]),
  // Account data requests
  ...group('account_data', G, ['^/_matrix/client/(r0|v3|unstable)/.*/tags', '^/_matrix/client/(r0|v3|unstable)/.*/account_data']),
  // Receipts requests
  ...group('receipts', G, ['^/_matrix/client/(r0|v3|unstable)/rooms/.*/receipt', '^/_matrix/client/(r0|v3|unstable)/rooms/.*/read_markers']),
  // Presence requests
  ...group('presence', G, ['^/_matrix/client/(api/v1|r0|v3|unstable)/presence/']),
  // User directory search requests
  ...group('user_directory', G, ['^/_matrix/client/(r0|v3|unstable)/user_directory/search$']),
  // "Additionally, the following REST endpoints can be handled for GET requests"
  ...group('push_rules_read', G, ['^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/'], { methods: ['GET'] }),
  // Pagination: all requests for a given room must reach the same instance.
  ...group('pagination', G, ['^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$']),
  // SSO (all SSO logins must go to a single process)
  ...group('sso', G, [
    '^/_matrix/client/(api/v1|r0|v3|unstable)/login/sso/redirect',
    '^/_synapse/client/pick_idp$',
    '^/_synapse/client/pick_username',
    '^/_synapse/client/new_user_consent$',
    '^/_synapse/client/sso_register$',
    '^/_synapse/client/oidc/callback$',
    '^/_synapse/client/saml2/authn_response$',
    '^/_matrix/client/(api/v1|r0|v3|unstable)/login/cas/ticket$',
  ]),
];

/** Endpoints that belong to a stream's writer ("should be routed directly to the worker configured as the stream writer"). */
export const STREAM_WRITER_ROUTES: readonly RoutingEntry[] = [
  ...group('typing', S('typing'), ['^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/typing']),
  ...group('to_device', S('to_device'), ['^/_matrix/client/(r0|v3|unstable)/sendToDevice/']),
  ...group('account_data', S('account_data'), ['^/_matrix/client/(r0|v3|unstable)/.*/tags', '^/_matrix/client/(r0|v3|unstable)/.*/account_data']),
  ...group('receipts', S('receipts'), [
    '^/_matrix/client/(r0|v3|unstable)/rooms/.*/receipt',
    '^/_matrix/client/(r0|v3|unstable)/rooms/.*/read_markers',
  ]),
  ...group('presence', S('presence'), ['^/_matrix/client/(api/v1|r0|v3|unstable)/presence/']),
];

/** synapse.app.media_repository: everything under /_matrix/media/ plus the media admin APIs. */
export const MEDIA_REPOSITORY_ROUTES: readonly RoutingEntry[] = [
  ...group('media', MEDIA, ['^/_matrix/media/']),
  ...group('media', MEDIA, ['^/_matrix/client/v1/media/', '^/_matrix/federation/v1/media/'], {
    extension: true,
    note: 'authenticated media (Matrix 1.11) postdates the 1.67 worker page; it is the same repository',
  }),
  ...group('media_admin', MEDIA, [
    '^/_synapse/admin/v1/purge_media_cache$',
    '^/_synapse/admin/v1/room/.*/media.*$',
    '^/_synapse/admin/v1/user/.*/media.*$',
    '^/_synapse/admin/v1/media/.*$',
    '^/_synapse/admin/v1/quarantine_media/.*$',
    '^/_synapse/admin/v1/users/.*/media$',
  ]),
];

/** synapse.app.user_dir (deprecated): the user directory search. */
export const USER_DIR_ROUTES: readonly RoutingEntry[] = [
  ...group('user_directory', USER_DIR, ['^/_matrix/client/(r0|v3|unstable)/user_directory/search$']),
];

export const ROUTING_TABLE: readonly RoutingEntry[] = [
  ...GENERIC_WORKER_ROUTES,
  ...STREAM_WRITER_ROUTES,
  ...MEDIA_REPOSITORY_ROUTES,
  ...USER_DIR_ROUTES,
];

/** Paths every process serves whatever its role. */
export const ALWAYS_SERVED_PREFIXES = ['/health', '/_synapse/replication/'] as const;

const compiled = new Map<string, RegExp>();
export function entryRegExp(entry: RoutingEntry): RegExp {
  let re = compiled.get(entry.pattern);
  if (!re) {
    re = new RegExp(entry.pattern);
    compiled.set(entry.pattern, re);
  }
  return re;
}

export function entryMatches(entry: RoutingEntry, method: string, path: string): boolean {
  if (entry.methods && !entry.methods.includes(method.toUpperCase())) return false;
  return entryRegExp(entry).test(path);
}
