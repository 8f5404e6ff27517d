import { describe, expect, it } from 'vitest';
import { UserDirectoryService } from '../../../src/services/user-directory/user-directory-service.js';
import type { RoomsExtraStore } from '../../../src/storage/rooms-extra/store.js';

function fakeStore(calls: unknown[]): RoomsExtraStore {
  return {
    joinedRooms: async () => ['!mine:x'],
    publicJoinRuleRooms: async () => ['!pub:x'],
    searchUsers: async (o: any) => {
      calls.push(o);
      return [
        { userId: '@a:x', displayName: 'A', avatarUrl: null },
        { userId: '@b:x', displayName: null, avatarUrl: 'mxc://x/y' },
        { userId: '@c:x', displayName: null, avatarUrl: null },
      ].slice(0, o.limit);
    },
  } as unknown as RoomsExtraStore;
}

describe('user directory service', () => {
  it('answers nothing when disabled', async () => {
    const calls: unknown[] = [];
    const s = new UserDirectoryService(fakeStore(calls), { enabled: false, searchAllUsers: false });
    expect(await s.search('@me:x', 'a', 10)).toEqual({ results: [], limited: false });
    expect(calls).toEqual([]);
  });
  it('searches shared and public rooms, sets limited, honours search_all_users', async () => {
    const calls: any[] = [];
    const s = new UserDirectoryService(fakeStore(calls), { enabled: true, searchAllUsers: true });
    const r = await s.search('@me:x', '  Foo   bar ', 2);
    expect(r).toEqual({ results: [{ user_id: '@a:x', display_name: 'A' }, { user_id: '@b:x', avatar_url: 'mxc://x/y' }], limited: true });
    expect(calls[0]).toEqual({ words: ['foo', 'bar'], roomIds: ['!mine:x', '!pub:x'], allLocal: true, limit: 3 });
    expect(await s.search('@me:x', '   ', 2)).toEqual({ results: [], limited: false });
  });
});
