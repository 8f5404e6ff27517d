import { describe, expect, it } from 'vitest';
import { timeoutTransition } from '../../../src/services/presence/presence-service.js';

const opts = { idleMs: 5 * 60_000, offlineMs: 60_000 };
const base = { statusMsg: null, currentlyActive: true };

describe('presence timeouts', () => {
  it('keeps a recently active, syncing user online', () => {
    expect(timeoutTransition({ ...base, state: 'online', lastActiveTs: 1000, lastSeenTs: 1000 }, 30_000, opts)).toBeUndefined();
  });
  it('makes an online user idle for 5 minutes unavailable', () => {
    const now = 10 * 60_000;
    expect(timeoutTransition({ ...base, state: 'online', lastActiveTs: now - 5 * 60_000 - 1, lastSeenTs: now - 1000 }, now, opts)).toBe('unavailable');
    expect(timeoutTransition({ ...base, state: 'online', lastActiveTs: now - 4 * 60_000, lastSeenTs: now - 1000 }, now, opts)).toBeUndefined();
  });
  it('takes users who stopped syncing offline, whatever their state', () => {
    const now = 10 * 60_000;
    expect(timeoutTransition({ ...base, state: 'online', lastActiveTs: now, lastSeenTs: now - 61_000 }, now, opts)).toBe('offline');
    expect(timeoutTransition({ ...base, state: 'unavailable', lastActiveTs: 0, lastSeenTs: now - 61_000 }, now, opts)).toBe('offline');
    expect(timeoutTransition({ ...base, state: 'unavailable', lastActiveTs: 0, lastSeenTs: now - 1000 }, now, opts)).toBeUndefined();
  });
  it('leaves offline users alone', () => {
    expect(timeoutTransition({ ...base, state: 'offline', lastActiveTs: 0, lastSeenTs: 0 }, 1e9, opts)).toBeUndefined();
  });
});
