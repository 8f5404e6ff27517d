/**
 * The HTTP replication endpoints this process answers (DESIGN.md §4), by
 * name: `POST /_synapse/replication/<name>/<txnId>`. Services register a
 * handler for each write they accept from other processes; the api layer
 * (src/api/replication/) authenticates, deduplicates by transaction id and
 * calls them. Framework-free so that services can use it.
 */
import { MatrixError } from '../util/errors.js';

export interface ReplicationContext {
  /** The endpoint name. */
  name: string;
  /** The caller's transaction id (absent for read endpoints). */
  txnId?: string;
}

export type ReplicationHandler = (body: Record<string, any>, ctx: ReplicationContext) => Promise<unknown> | unknown;

export interface ReplicationHandlerOptions {
  /** Cache the response per txnId so that a retry never repeats the write (default true). */
  idempotent?: boolean;
}

interface Entry {
  handler: ReplicationHandler;
  idempotent: boolean;
}

interface Cached {
  expires: number;
  result: Promise<{ ok: true; value: unknown } | { ok: false; error: MatrixError }>;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

export class ReplicationRegistry {
  private readonly handlers = new Map<string, Entry>();
  private readonly cache = new Map<string, Cached>();

  constructor(
    /** How long a response is kept for retries of the same transaction. */
    private readonly ttlMs = 30 * 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  register(name: string, handler: ReplicationHandler, opts: ReplicationHandlerOptions = {}): void {
    if (!NAME.test(name)) throw new Error(`replication endpoint name must match ${NAME}: ${name}`);
    if (this.handlers.has(name)) throw new Error(`replication endpoint ${name} is registered twice`);
    this.handlers.set(name, { handler, idempotent: opts.idempotent ?? true });
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  names(): string[] {
    return [...this.handlers.keys()];
  }

  /**
   * Runs the handler of `name`. With a txnId on an idempotent endpoint, the
   * first call's outcome (value or Matrix error) is returned to every retry,
   * including retries that arrive while the first call still runs.
   * Unexpected errors are not cached: a retry runs the handler again.
   */
  async call(name: string, body: Record<string, any>, txnId?: string): Promise<unknown> {
    const entry = this.handlers.get(name);
    if (!entry) throw new MatrixError(404, 'M_UNRECOGNIZED', `Unknown replication endpoint ${name}`);
    if (!entry.idempotent || txnId === undefined) return entry.handler(body, { name, txnId });
    const key = `${name}\u0000${txnId}`;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) {
      const r = await hit.result;
      if (r.ok) return r.value;
      throw r.error;
    }
    this.evict(now);
    const result = (async () => {
      try {
        return { ok: true as const, value: await entry.handler(body, { name, txnId }) };
      } catch (e) {
        if (e instanceof MatrixError) return { ok: false as const, error: e };
        throw e;
      }
    })();
    const cached = { expires: now + this.ttlMs, result };
    // Deleted first so that it moves to the end: evict relies on insertion
    // order being expiry order (a key set again keeps its old place).
    this.cache.delete(key);
    this.cache.set(key, cached);
    let r: Awaited<typeof result>;
    try {
      r = await result;
    } catch (e) {
      if (this.cache.get(key) === cached) this.cache.delete(key);
      throw e;
    }
    if (r.ok) return r.value;
    throw r.error;
  }

  private evict(now: number): void {
    if (this.cache.size < this.maxEntries) return;
    // One TTL and insertion order: the expired entries are at the front. (A
    // full scan here cost every call 10,000 steps once the cache had filled,
    // under a minute of steady sending.)
    for (const [k, v] of this.cache) {
      if (v.expires > now) break;
      this.cache.delete(k);
    }
    // Still full: drop the oldest (Map keeps insertion order).
    while (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
  }
}
