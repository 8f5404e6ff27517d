/**
 * POST /user_directory/search (client-server API "User directory").
 *
 * Computed at query time from current_membership, room_memberships (display
 * names of remote users) and profiles, so it is always up to date as
 * profiles and memberships change, with no background job or hook. A user
 * is found when they share a room with the searcher or are joined to a
 * public room (join rule `public`); with `user_directory.search_all_users`
 * every local user is searchable. Every word of the search term must occur
 * in the user id or the display name (case-insensitive).
 * `user_directory.enabled: false` answers with no results.
 */
import type { RoomsExtraStore } from '../../storage/rooms-extra/store.js';

export interface UserDirectoryConfig {
  enabled: boolean;
  searchAllUsers: boolean;
}

const MAX_LIMIT = 50;
const MAX_WORD_LENGTH = 1000;

export interface DirectoryResult {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

export class UserDirectoryService {
  constructor(
    private readonly store: RoomsExtraStore,
    private readonly cfg: UserDirectoryConfig,
  ) {}

  async search(searcher: string, term: string, limitIn: number): Promise<{ results: DirectoryResult[]; limited: boolean }> {
    if (!this.cfg.enabled) return { results: [], limited: false };
    const words = [...new Set(term.toLowerCase().split(/\s+/).filter(Boolean))].slice(0, 10);
    if (!words.length) return { results: [], limited: false };
    // A word this long matches no user id (at most 255 characters) and no
    // sensible display name, and would exceed SQLite's LIKE pattern limit.
    if (words.some((w) => w.length > MAX_WORD_LENGTH)) return { results: [], limited: false };
    const limit = Math.min(Math.max(limitIn, 1), MAX_LIMIT);
    const [mine, publicRooms] = await Promise.all([this.store.joinedRooms(searcher), this.store.publicJoinRuleRooms()]);
    const roomIds = [...new Set([...mine, ...publicRooms])];
    const users = await this.store.searchUsers({ words, roomIds, allLocal: this.cfg.searchAllUsers, limit: limit + 1 });
    const results = users.slice(0, limit).map((u) => {
      const r: DirectoryResult = { user_id: u.userId };
      if (u.displayName) r.display_name = u.displayName;
      if (u.avatarUrl) r.avatar_url = u.avatarUrl;
      return r;
    });
    return { results, limited: users.length > limit };
  }
}
