/**
 * Which of the server's routes a process mounts, from the routing table.
 * The main process serves everything (except the media repository when
 * `enable_media_repo: false`); a worker serves the documented endpoints of
 * its application, plus the endpoints of the streams it writes. Anything
 * else answers like an unknown endpoint (404 M_UNRECOGNIZED).
 */
import type { RouteDef } from '../api/types.js';
import type { ProcessRole } from './role.js';
import {
  ALWAYS_SERVED_PREFIXES,
  entryMatches,
  GENERIC_WORKER_ROUTES,
  MEDIA_REPOSITORY_ROUTES,
  ROUTING_TABLE,
  STREAM_WRITER_ROUTES,
  USER_DIR_ROUTES,
  type RoutingEntry,
} from './routing-table.js';

/**
 * A concrete request path for a fastify route pattern, to match against the
 * documented regexes: `:param` segments become a sample value, `*` a
 * two-segment tail. The sample contains no `/`, like a percent-encoded id.
 */
export function samplePath(pattern: string): string {
  return pattern
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '%21sample%3Aexample.org' : seg === '*' ? 'sample/tail' : seg))
    .join('/');
}

/** The routing-table entries a role serves. */
export function entriesForRole(role: ProcessRole): RoutingEntry[] {
  if (role.isMain) return role.servesMedia ? [...ROUTING_TABLE] : ROUTING_TABLE.filter((e) => e.owner.kind !== 'media_repository');
  switch (role.app) {
    case 'generic_worker':
      return [
        ...GENERIC_WORKER_ROUTES,
        ...STREAM_WRITER_ROUTES.filter((e) => e.owner.kind === 'stream' && role.writes.has(e.owner.stream)),
      ];
    case 'media_repository':
      return [...MEDIA_REPOSITORY_ROUTES];
    case 'user_dir':
      return [...USER_DIR_ROUTES];
    default:
      // pusher, federation_sender, appservice: no REST endpoints
      return [];
  }
}

/** Whether a role serves a request (method + path, without the query string). */
export function roleServes(role: ProcessRole, method: string, path: string): boolean {
  if (ALWAYS_SERVED_PREFIXES.some((p) => path === p || path.startsWith(p))) return true;
  if (role.isMain) {
    if (role.servesMedia) return true;
    return !MEDIA_REPOSITORY_ROUTES.some((e) => entryMatches(e, method, path));
  }
  return entriesForRole(role).some((e) => entryMatches(e, method, path));
}

/** The routes a process of this role mounts. */
export function filterRoutesForRole(routes: RouteDef[], role: ProcessRole): RouteDef[] {
  if (role.isMain && role.servesMedia) return routes;
  return routes.filter((r) => roleServes(role, r.method, samplePath(r.path)));
}
