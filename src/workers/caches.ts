/**
 * Per-process caches invalidated across processes (DESIGN.md §4, the
 * `caches` stream). A capability registers each cache once by name:
 *
 *   caches(services).register('push_rules', (keys) => rules.invalidate(keys[0]!), () => rules.invalidateAll());
 *
 * and calls `caches(services).invalidate('push_rules', [userId])` in the same
 * step as the write that changes the cached data: the cache is dropped here
 * at once and an `RDATA caches <instance> <n> {"name","keys"}` row tells
 * every other process to drop it too. A process that may have missed rows
 * (Redis outage, restart) clears every registered cache (`clearAll`).
 * Without worker mode the registry is process-local.
 */

export type InvalidateFn = (keys: string[]) => void;

export interface CacheEntry {
  invalidate: InvalidateFn;
  /** Drops the whole cache (catch-up after missed invalidations). Optional: caches with a short TTL can skip it. */
  clearAll?: () => void;
}

export class CacheRegistry {
  private readonly caches = new Map<string, CacheEntry>();
  /** Set by replication: publishes an invalidation to the other processes. */
  publish: ((name: string, keys: string[]) => void) | undefined;

  register(name: string, invalidate: InvalidateFn, clearAll?: () => void): void {
    this.caches.set(name, { invalidate, clearAll });
  }

  names(): string[] {
    return [...this.caches.keys()];
  }

  /** Drops `keys` of cache `name` here and in every other process. */
  invalidate(name: string, keys: string[]): void {
    this.applyLocal(name, keys);
    this.publish?.(name, keys);
  }

  /** An invalidation from another process. Unknown names are ignored (that process has a cache we lack). */
  applyLocal(name: string, keys: string[]): void {
    const c = this.caches.get(name);
    if (!c) return;
    try {
      c.invalidate(keys);
    } catch {
      /* a cache must never fail replication */
    }
  }

  /** Drops the whole cache `name` here (a stream it follows moved without its invalidations yet). */
  clear(name: string): void {
    try {
      this.caches.get(name)?.clearAll?.();
    } catch {
      /* ignore */
    }
  }

  clearAll(): void {
    for (const c of this.caches.values()) {
      try {
        c.clearAll?.();
      } catch {
        /* ignore */
      }
    }
  }
}

const localRegistries = new WeakMap<object, CacheRegistry>();

/** The cache registry of a process: the worker runtime's, or a process-local one. */
export function caches(s: { workers?: { caches?: CacheRegistry } }): CacheRegistry {
  if (s.workers?.caches) return s.workers.caches;
  let r = localRegistries.get(s);
  if (!r) localRegistries.set(s, (r = new CacheRegistry()));
  return r;
}
