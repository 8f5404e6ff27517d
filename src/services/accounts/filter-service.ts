/**
 * Stored filters (POST/GET /user/{userId}/filter). Sync and /messages look
 * filters up here by id.
 */
import { validateFilter, type Filter } from '../../matrix/filter.js';
import type { AccountsStore } from './store.js';

/** Stored filters kept in memory (a filter never changes once stored). */
const CACHE_MAX = 10_000;

export class FilterService {
  /** "userId\nfilterId" -> stored JSON (parsed per call: callers get their own object). */
  private readonly cache = new Map<string, string>();

  constructor(private readonly store: AccountsStore) {}

  /** Validates and stores a filter; returns its id. */
  async create(userId: string, filter: unknown): Promise<string> {
    const valid = validateFilter(filter);
    return String(await this.store.addFilter(userId, JSON.stringify(valid)));
  }

  /** The user's filter with this id, or undefined. */
  async get(userId: string, filterId: string): Promise<Filter | undefined> {
    if (!/^\d{1,15}$/.test(filterId)) return undefined;
    // /sync asks for the same filter on every request.
    const key = `${userId}\n${filterId}`;
    let json = this.cache.get(key);
    if (json === undefined) {
      json = await this.store.getFilter(userId, Number(filterId));
      if (json === undefined) return undefined;
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, json);
    }
    return JSON.parse(json) as Filter;
  }
}
