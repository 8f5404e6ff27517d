import { expect, it } from 'vitest';
import { isBetterSession, parseKeyBackupData } from '../../../src/services/e2ee/backup-service.js';

const s = (isVerified: boolean, firstMessageIndex: number, forwardedCount: number) => ({
  roomId: '!r:t',
  sessionId: 's',
  isVerified,
  firstMessageIndex,
  forwardedCount,
  sessionData: {},
});

it('prefers verified, then lower first_message_index, then lower forwarded_count', () => {
  expect(isBetterSession(s(true, 10, 10), s(false, 0, 0))).toBe(true);
  expect(isBetterSession(s(false, 0, 0), s(true, 10, 10))).toBe(false);
  expect(isBetterSession(s(false, 1, 10), s(false, 2, 0))).toBe(true);
  expect(isBetterSession(s(false, 2, 0), s(false, 1, 10))).toBe(false);
  expect(isBetterSession(s(false, 1, 1), s(false, 1, 2))).toBe(true);
  expect(isBetterSession(s(false, 1, 2), s(false, 1, 1))).toBe(false);
  // Equal: keep the stored one.
  expect(isBetterSession(s(true, 1, 1), s(true, 1, 1))).toBe(false);
});

it('validates key backup data', () => {
  expect(() => parseKeyBackupData('!r', 's', { first_message_index: -1, forwarded_count: 0, is_verified: false, session_data: {} })).toThrow();
  expect(() => parseKeyBackupData('!r', 's', { first_message_index: 0, forwarded_count: 0, is_verified: 'no', session_data: {} })).toThrow();
  expect(() => parseKeyBackupData('!r', 's', { first_message_index: 0, forwarded_count: 0, is_verified: false })).toThrow();
  expect(parseKeyBackupData('!r', 's', { first_message_index: 3, forwarded_count: 1, is_verified: true, session_data: { a: 1 } })).toEqual({
    roomId: '!r',
    sessionId: 's',
    firstMessageIndex: 3,
    forwardedCount: 1,
    isVerified: true,
    sessionData: { a: 1 },
  });
});
