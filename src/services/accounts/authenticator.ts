/**
 * Resolves access tokens to requesters. Tokens are looked up by their SHA-256;
 * results are kept in a small in-process LRU cache for a few seconds so that
 * hot endpoints (whoami, sync) do not hit the database on every request.
 * Logout and device deletion drop entries at once in this process; other
 * processes see the change when their entry expires (or sooner, when the
 * caches stream invalidates them through `invalidate`).
 */
import type { Authenticator, Requester } from '../../api/types.js';
import { Errors } from '../../util/errors.js';
import type { AccountsStore } from './store.js';
import { hashToken } from './tokens.js';

interface Entry {
  requester: Requester;
  validUntilMs: number | null;
  cachedUntil: number;
  refreshTokenId: number | null;
  used: boolean;
}

const CACHE_MAX = 10_000;
const CACHE_TTL_MS = 5_000;
/** Device last-seen is written at most this often per token. */
const LAST_SEEN_INTERVAL_MS = 60_000;

export class TokenAuthenticator implements Authenticator {
  private readonly cache = new Map<string, Entry>();
  private readonly lastSeen = new Map<number, { ts: number; ip: string }>();
  /** Called with token hashes dropped here, so that other processes can drop them too. */
  readonly onInvalidated: Array<(tokenHashes: string[]) => void> = [];

  constructor(
    private readonly store: AccountsStore,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  async authenticate(token: string, req: { ip: string; userAgent?: string }): Promise<Requester> {
    const hash = hashToken(token);
    const now = Date.now();
    let entry = this.cache.get(hash);
    if (entry && entry.cachedUntil < now) {
      this.cache.delete(hash);
      entry = undefined;
    }
    if (!entry) {
      const row = await this.store.getAccessToken(hash);
      if (!row || row.deactivated) throw Errors.unknownToken(false);
      entry = {
        requester: { userId: row.user_id, deviceId: row.device_id, isGuest: row.is_guest, tokenId: row.id },
        validUntilMs: row.valid_until_ms,
        cachedUntil: now + CACHE_TTL_MS,
        refreshTokenId: row.refresh_token_id,
        used: row.used,
      };
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    } else {
      // LRU: move to the end
      this.cache.delete(hash);
    }
    this.cache.set(hash, entry);
    // An expired (refreshable) token: the client should refresh, so soft_logout.
    if (entry.validUntilMs !== null && entry.validUntilMs <= now) throw Errors.unknownToken(true);
    if (!entry.used && entry.refreshTokenId !== null) {
      entry.used = true;
      await this.store.markAccessTokenUsed(entry.requester.tokenId, entry.refreshTokenId);
    }
    this.noteLastSeen(entry.requester, req, now);
    return entry.requester;
  }

  private noteLastSeen(r: Requester, req: { ip: string; userAgent?: string }, now: number): void {
    if (!r.deviceId) return;
    const prev = this.lastSeen.get(r.tokenId);
    if (prev && prev.ip === req.ip && now - prev.ts < LAST_SEEN_INTERVAL_MS) return;
    if (this.lastSeen.size >= CACHE_MAX) this.lastSeen.delete(this.lastSeen.keys().next().value!);
    this.lastSeen.set(r.tokenId, { ts: now, ip: req.ip });
    this.store.updateDeviceLastSeen(r.userId, r.deviceId, now, req.ip, req.userAgent ?? null).catch(this.onError);
  }

  /** Drops tokens from this process's cache (and tells listeners). */
  invalidate(tokenHashes: string[], broadcast = true): void {
    for (const h of tokenHashes) this.cache.delete(h);
    if (broadcast && tokenHashes.length) for (const l of this.onInvalidated) l(tokenHashes);
  }

  /** Drops every cached token of a user. */
  invalidateUser(userId: string): void {
    for (const [h, e] of this.cache) if (e.requester.userId === userId) this.cache.delete(h);
  }
}
