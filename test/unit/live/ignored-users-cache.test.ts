import { describe, expect, it } from 'vitest';
import { AccountDataService } from '../../../src/services/account-data/account-data-service.js';
import type { AccountDataStore } from '../../../src/storage/live/account-data-store.js';

/** A store whose reads of m.ignored_user_list wait until released. */
function slowStore() {
  let content: Record<string, any> | undefined = { ignored_users: {} };
  const waiting: Array<() => void> = [];
  const store = {
    async get(_userId: string, _roomId: string, _type: string) {
      const seen = content;
      await new Promise<void>((r) => waiting.push(r));
      return seen;
    },
  } as unknown as AccountDataStore;
  return {
    store,
    set: (c: Record<string, any>) => (content = c),
    release: () => waiting.splice(0).forEach((r) => r()),
  };
}

describe('ignored users cache', () => {
  it('does not keep a read that an invalidation overtook', async () => {
    const s = slowStore();
    const svc = new AccountDataService(s.store);
    const before = svc.getIgnoredUsers('@gina:x');
    // Gina ignores Alice while the read of the old (empty) list is in flight.
    s.set({ ignored_users: { '@alice:x': {} } });
    svc.invalidate('@gina:x', '', 'm.ignored_user_list');
    s.release();
    expect((await before).size).toBe(0);
    expect(svc.cachedIgnoredUsers('@gina:x')).toBeUndefined();
    const after = svc.getIgnoredUsers('@gina:x');
    s.release();
    await new Promise((r) => setImmediate(r));
    s.release();
    expect([...(await after)]).toEqual(['@alice:x']);
    expect(svc.cachedIgnoredUsers('@gina:x')).toEqual(new Set(['@alice:x']));
  });
});
