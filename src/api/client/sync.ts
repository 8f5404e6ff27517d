/** GET /sync (client-server API "Syncing"). */
import type { Services } from '../../app/services.js';
import { parseFilterParam } from '../../matrix/filter.js';
import type { SyncFilter } from '../../matrix/filter-apply.js';
import type { PresenceState } from '../../streams/sync-sources.js';
import { Errors } from '../../util/errors.js';
import { clientPaths, type Router } from '../types.js';
import { queryBool, queryInt } from '../validate.js';

/** Longest a long-poll may wait. */
export const MAX_SYNC_TIMEOUT_MS = 10 * 60_000;

/**
 * Stored filters as /sync uses them, parsed once: a client long-polls with
 * the same filter id on every request, and a stored filter never changes.
 * Shared between requests, so frozen (/sync only reads a filter); one
 * cache per server (Services).
 */
const storedFilters = new WeakMap<Services, Map<string, SyncFilter>>();
const STORED_FILTERS_MAX = 10_000;

/** The `filter` query parameter: inline JSON or the id of a stored filter. */
export async function loadFilter(s: Services, userId: string, param: string | undefined): Promise<SyncFilter> {
  if (param === undefined || param === '') return {};
  let cache = storedFilters.get(s);
  if (!cache) storedFilters.set(s, (cache = new Map()));
  const key = `${userId}\n${param}`;
  const known = cache.get(key);
  if (known) return known;
  const parsed = parseFilterParam(param);
  if ('filter' in parsed) return parsed.filter as SyncFilter;
  const stored = await s.filters.get(userId, parsed.filterId);
  if (!stored) throw Errors.invalidParam(`No such filter: ${parsed.filterId}`);
  if (cache.size >= STORED_FILTERS_MAX) cache.delete(cache.keys().next().value!);
  const filter = deepFreeze(stored as SyncFilter);
  cache.set(key, filter);
  return filter;
}

function deepFreeze<T>(x: T): T {
  if (x && typeof x === 'object' && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x)) deepFreeze(v);
  }
  return x;
}

const PRESENCE_STATES = ['online', 'offline', 'unavailable'];

export function syncRoutes(r: Router, s: Services): void {
  r.get(
    clientPaths('/sync'),
    async (req) => {
      const { userId, deviceId } = req.requester;
      const since = req.query.since || undefined;
      const timeoutMs = queryInt(req.query.timeout, 'timeout', 0, 0, MAX_SYNC_TIMEOUT_MS);
      const fullState = queryBool(req.query.full_state, 'full_state', false);
      const setPresence = req.query.set_presence;
      if (setPresence !== undefined && !PRESENCE_STATES.includes(setPresence)) {
        throw Errors.invalidParam("set_presence must be one of 'online', 'offline', 'unavailable'");
      }
      const filter = await loadFilter(s, userId, req.query.filter);
      return s.sync.sync({
        userId,
        deviceId,
        since,
        filter,
        fullState,
        timeoutMs,
        setPresence: setPresence as PresenceState | undefined,
        signal: req.signal,
      });
    },
    { auth: 'required', allowGuest: true },
  );
}
