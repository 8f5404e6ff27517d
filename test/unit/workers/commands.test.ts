import { describe, expect, it } from 'vitest';
import { parseCommand, ReplicationCommandError, serialiseCommand, splitCommandLines, type Command } from '../../../src/workers/commands.js';

describe('replication line commands', () => {
  const cases: Array<[Command, string]> = [
    [{ name: 'RDATA', stream: 'events', instance: 'persister1', token: 42, row: { room_id: '!a b:x', type: 'm.room.message' } }, 'RDATA events persister1 42 {"room_id":"!a b:x","type":"m.room.message"}'],
    [{ name: 'RDATA', stream: 'typing', instance: 'master', token: 'batch', row: ['!r:x', ['@u:x']] }, 'RDATA typing master batch ["!r:x",["@u:x"]]'],
    [{ name: 'POSITION', stream: 'events', instance: 'persister2', prev: 10, next: 15 }, 'POSITION events persister2 10 15'],
    [{ name: 'REPLICATE' }, 'REPLICATE'],
    [{ name: 'PING', ts: 1700000000000 }, 'PING 1700000000000'],
    [{ name: 'USER_SYNC', instance: 'generic1', userId: '@alice:example.org', syncing: true, lastSyncMs: 5 }, 'USER_SYNC generic1 @alice:example.org start 5'],
    [{ name: 'USER_SYNC', instance: 'generic1', userId: '@alice:example.org', syncing: false, lastSyncMs: 6 }, 'USER_SYNC generic1 @alice:example.org end 6'],
    [{ name: 'CLEAR_USER_SYNC', instance: 'generic1' }, 'CLEAR_USER_SYNC generic1'],
    [{ name: 'FEDERATION_ACK', instance: 'fs1', token: 77 }, 'FEDERATION_ACK fs1 77'],
    [{ name: 'REMOTE_SERVER_UP', server: 'matrix.org' }, 'REMOTE_SERVER_UP matrix.org'],
  ];
  for (const [cmd, line] of cases) {
    it(`${cmd.name} round-trips`, () => {
      expect(serialiseCommand(cmd)).toBe(line);
      expect(parseCommand(line)).toEqual(cmd);
    });
  }

  it('USER_IP carries JSON', () => {
    const info = { user_id: '@a:x', access_token: 'syt_x', ip: '::1', user_agent: 'Element Web 1.0', device_id: 'DEV', last_seen: 123 };
    const line = serialiseCommand({ name: 'USER_IP', info });
    expect(line.startsWith('USER_IP {')).toBe(true);
    expect(parseCommand(line)).toEqual({ name: 'USER_IP', info });
  });

  it('rejects malformed lines', () => {
    for (const bad of [
      'NOPE 1',
      'RDATA events persister1 x {}',
      'RDATA events persister1 1 {not json',
      'RDATA events persister1',
      'POSITION events p 1',
      'POSITION events p 1 2 3',
      'REPLICATE now',
      'PING',
      'PING abc',
      'USER_SYNC g @a:x maybe 5',
      'CLEAR_USER_SYNC a b',
      'FEDERATION_ACK fs1',
      'USER_IP {"user_id":1}',
      'REMOTE_SERVER_UP',
      'RDATA events p 1 {}\nPING 1',
      '',
    ]) {
      expect(() => parseCommand(bad), bad).toThrow(ReplicationCommandError);
    }
  });

  it('refuses to serialise names with spaces', () => {
    expect(() => serialiseCommand({ name: 'POSITION', stream: 'events', instance: 'a b', prev: 1, next: 2 })).toThrow(ReplicationCommandError);
    expect(() => serialiseCommand({ name: 'PING', ts: 1.5 })).toThrow(ReplicationCommandError);
  });

  it('splits a message into its command lines (one line is the single-command form)', () => {
    expect(splitCommandLines('PING 1')).toEqual(['PING 1']);
    expect(splitCommandLines('PING 1\nREPLICATE\n')).toEqual(['PING 1', 'REPLICATE']);
    expect(splitCommandLines('')).toEqual([]);
    // A row's JSON never holds a raw newline: serialised commands stay one line each.
    const line = serialiseCommand({ name: 'RDATA', stream: 'events', instance: 'p1', token: 1, row: { body: 'a\nb' } });
    expect(splitCommandLines(`${line}\n${line}`).map(parseCommand)).toHaveLength(2);
  });
});
