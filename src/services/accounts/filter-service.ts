/**
 * Stored filters (POST/GET /user/{userId}/filter). Sync and /messages look
 * filters up here by id.
 */
import { validateFilter, type Filter } from '../../matrix/filter.js';
import type { AccountsStore } from './store.js';

export class FilterService {
  constructor(private readonly store: AccountsStore) {}

  /** Validates and stores a filter; returns its id. */
  async create(userId: string, filter: unknown): Promise<string> {
    const valid = validateFilter(filter);
    return String(await this.store.addFilter(userId, JSON.stringify(valid)));
  }

  /** The user's filter with this id, or undefined. */
  async get(userId: string, filterId: string): Promise<Filter | undefined> {
    if (!/^\d{1,15}$/.test(filterId)) return undefined;
    const json = await this.store.getFilter(userId, Number(filterId));
    return json === undefined ? undefined : (JSON.parse(json) as Filter);
  }
}
