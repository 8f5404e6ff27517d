/**
 * Token-bucket rate limiting with Synapse's `rc_*` settings: each key (an IP
 * address, a user id, ...) has a bucket of `burst_count` actions that refills
 * at `per_second`. An action over the limit is refused with M_LIMIT_EXCEEDED
 * (429) and `retry_after_ms`. In-process: each process limits what it serves.
 */
import { Errors } from '../util/errors.js';

export interface RatelimitSettings {
  per_second: number;
  burst_count: number;
}

interface Bucket {
  /** Actions counted, decaying at per_second. */
  level: number;
  updatedMs: number;
}

export class Ratelimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(
    readonly settings: RatelimitSettings,
    private readonly clock: () => number = Date.now,
  ) {}

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      b = { level: 0, updatedMs: now };
      this.buckets.set(key, b);
    } else {
      const drained = ((now - b.updatedMs) / 1000) * this.settings.per_second;
      b.level = Math.max(0, b.level - drained);
      b.updatedMs = now;
    }
    return b;
  }

  /**
   * Whether one more action is allowed now; `{allowed:false, retryAfterMs}`
   * otherwise. With `record` the action is counted when allowed.
   */
  check(key: string, opts: { record?: boolean; cost?: number } = {}): { allowed: boolean; retryAfterMs: number } {
    const now = this.clock();
    this.sweep(now);
    const cost = opts.cost ?? 1;
    const { per_second, burst_count } = this.settings;
    const b = this.bucket(key, now);
    if (b.level + cost > burst_count) {
      // Time until enough has drained for this action to fit.
      const excess = b.level + cost - burst_count;
      const retryAfterMs = per_second > 0 ? Math.ceil((excess / per_second) * 1000) : 60_000;
      return { allowed: false, retryAfterMs: Math.max(1, retryAfterMs) };
    }
    if (opts.record !== false) b.level += cost;
    return { allowed: true, retryAfterMs: 0 };
  }

  /** Counts the action, throwing M_LIMIT_EXCEEDED when over the limit. */
  take(key: string): void {
    const r = this.check(key);
    if (!r.allowed) throw Errors.limitExceeded(r.retryAfterMs);
  }

  /** Throws M_LIMIT_EXCEEDED if one more action would be over the limit, without counting it. */
  assertCanDo(key: string): void {
    const r = this.check(key, { record: false });
    if (!r.allowed) throw Errors.limitExceeded(r.retryAfterMs);
  }

  /** Counts an action without checking (e.g. a failed login attempt). */
  record(key: string): void {
    const b = this.bucket(key, this.clock());
    b.level += 1;
  }

  /** Forgets empty buckets now and then so that memory stays bounded. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000 || this.buckets.size < 1000) return;
    this.lastSweep = now;
    for (const [k, b] of this.buckets) {
      const level = b.level - ((now - b.updatedMs) / 1000) * this.settings.per_second;
      if (level <= 0) this.buckets.delete(k);
    }
  }
}
