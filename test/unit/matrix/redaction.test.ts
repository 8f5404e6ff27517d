import { describe, expect, it } from 'vitest';
import { redactEvent, redactForClient, redactsOf, resolveRoomVersion } from '../../../src/matrix/redaction.js';
import { getRoomVersion } from '../../../src/matrix/room-versions.js';

const ALL_VERSIONS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'];

function ev(type: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    event_id: '$e:example.org',
    type,
    room_id: '!r:example.org',
    sender: '@a:example.org',
    state_key: '',
    content,
    hashes: { sha256: 'h' },
    signatures: { 'example.org': { 'ed25519:1': 's' } },
    depth: 4,
    prev_events: ['$p'],
    prev_state: [],
    auth_events: ['$a'],
    origin: 'example.org',
    origin_server_ts: 1234,
    membership: 'join',
    unsigned: { age: 5, transaction_id: 't' },
    age_ts: 99,
    redacts: '$x',
    custom_top: 1,
    ...extra,
  };
}

const contentKeys = (e: object, v: string) => Object.keys((redactEvent(e, v) as any).content).sort();

describe('top-level keys', () => {
  const PRE_V11 = [
    'auth_events', 'content', 'depth', 'event_id', 'hashes', 'membership', 'origin', 'origin_server_ts',
    'prev_events', 'prev_state', 'room_id', 'sender', 'signatures', 'state_key', 'type',
  ];
  for (const v of ALL_VERSIONS) {
    it(`room version ${v}`, () => {
      const keys = Object.keys(redactEvent(ev('m.room.message', { body: 'x' }), v)).sort();
      if (v === '11') {
        expect(keys).toEqual(PRE_V11.filter((k) => !['origin', 'membership', 'prev_state'].includes(k)));
      } else {
        expect(keys).toEqual(PRE_V11);
      }
      // Never kept: unsigned, age_ts, redacts (top-level), unknown keys.
      for (const k of ['unsigned', 'age_ts', 'redacts', 'custom_top']) expect(keys).not.toContain(k);
    });
  }
  it('keeps absent keys absent and always sets content', () => {
    const out = redactEvent({ type: 'm.room.message', room_id: '!r:x' }, '10');
    expect(out).toEqual({ type: 'm.room.message', room_id: '!r:x', content: {} });
  });
  it('treats a non-object content as empty', () => {
    expect(redactEvent({ type: 'm.room.member', content: 'junk' }, '10')).toEqual({ type: 'm.room.member', content: {} });
  });
  it('does not modify the input', () => {
    const input = ev('m.room.message', { body: 'x' });
    const copy = structuredClone(input);
    redactEvent(input, '11');
    expect(input).toEqual(copy);
  });
});

describe('content keys by type and version', () => {
  it('strips all content of non-special types', () => {
    for (const v of ALL_VERSIONS) expect(contentKeys(ev('m.room.message', { body: 'x', msgtype: 'm.text' }), v)).toEqual([]);
  });

  it('m.room.member: membership; join_authorised_via_users_server from v9; third_party_invite.signed in v11', () => {
    const member = ev('m.room.member', {
      membership: 'join',
      displayname: 'A',
      avatar_url: 'mxc://x/y',
      join_authorised_via_users_server: '@b:example.org',
      third_party_invite: { display_name: 'x', signed: { mxid: '@a:example.org', token: 't', signatures: {} } },
    });
    for (const v of ['1', '6', '7', '8']) expect(contentKeys(member, v)).toEqual(['membership']);
    for (const v of ['9', '10']) expect(contentKeys(member, v)).toEqual(['join_authorised_via_users_server', 'membership']);
    const v11 = redactEvent(member, '11').content as any;
    expect(Object.keys(v11).sort()).toEqual(['join_authorised_via_users_server', 'membership', 'third_party_invite']);
    expect(v11.third_party_invite).toEqual({ signed: { mxid: '@a:example.org', token: 't', signatures: {} } });
  });

  it('v11 drops third_party_invite without signed', () => {
    const member = ev('m.room.member', { membership: 'invite', third_party_invite: { display_name: 'x' } });
    expect(contentKeys(member, '11')).toEqual(['membership']);
  });

  it('m.room.create: creator only before v11, everything in v11', () => {
    const create = ev('m.room.create', { creator: '@a:example.org', room_version: '1', 'm.federate': false, predecessor: {} });
    for (const v of ['1', '6', '9', '10']) expect(contentKeys(create, v)).toEqual(['creator']);
    expect(contentKeys(create, '11')).toEqual(['creator', 'm.federate', 'predecessor', 'room_version']);
  });

  it('m.room.join_rules: join_rule; allow from v8', () => {
    const jr = ev('m.room.join_rules', { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: '!x:y' }], other: 1 });
    for (const v of ['1', '6', '7']) expect(contentKeys(jr, v)).toEqual(['join_rule']);
    for (const v of ['8', '9', '10', '11']) expect(contentKeys(jr, v)).toEqual(['allow', 'join_rule']);
  });

  it('m.room.power_levels: the eight keys; invite only in v11', () => {
    const pl = ev('m.room.power_levels', {
      ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0,
      invite: 0, notifications: { room: 50 }, historical: 100,
    });
    const eight = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];
    for (const v of ['1', '6', '8', '9', '10']) expect(contentKeys(pl, v)).toEqual(eight);
    expect(contentKeys(pl, '11')).toEqual([...eight, 'invite'].sort());
  });

  it('m.room.aliases: aliases kept before v6 only', () => {
    const al = ev('m.room.aliases', { aliases: ['#a:example.org'] });
    for (const v of ['1', '2', '3', '4', '5']) expect(contentKeys(al, v)).toEqual(['aliases']);
    for (const v of ['6', '7', '8', '9', '10', '11']) expect(contentKeys(al, v)).toEqual([]);
  });

  it('m.room.history_visibility: history_visibility in all versions', () => {
    const hv = ev('m.room.history_visibility', { history_visibility: 'shared', x: 1 });
    for (const v of ALL_VERSIONS) expect(contentKeys(hv, v)).toEqual(['history_visibility']);
  });

  it('m.room.redaction: content.redacts kept only in v11', () => {
    const r = ev('m.room.redaction', { redacts: '$x', reason: 'spam' });
    for (const v of ['1', '10']) expect(contentKeys(r, v)).toEqual([]);
    expect(contentKeys(r, '11')).toEqual(['redacts']);
  });

  it('the same event keeps different keys under v1, v6, v8, v9 and v11 rules', () => {
    const results = ['1', '6', '8', '9', '11'].map((v) => ({
      jr: contentKeys(ev('m.room.join_rules', { join_rule: 'restricted', allow: [] }), v),
      member: contentKeys(ev('m.room.member', { membership: 'join', join_authorised_via_users_server: '@x:y' }), v),
      aliases: contentKeys(ev('m.room.aliases', { aliases: [] }), v),
      top: Object.keys(redactEvent(ev('m.room.message', {}), v)).length,
    }));
    const serialised = results.map((r) => JSON.stringify(r));
    expect(new Set(serialised).size).toBe(5);
  });

  it('does not treat inherited properties as allowed content (prototype keys)', () => {
    expect(contentKeys(ev('constructor', { a: 1 }), '10')).toEqual([]);
    expect(contentKeys(ev('toString', { a: 1 }), '11')).toEqual([]);
  });
});

describe('redactForClient', () => {
  it('adds unsigned.redacted_because and drops the other unsigned keys', () => {
    const redaction = { type: 'm.room.redaction', event_id: '$r:example.org', content: { reason: 'spam' }, redacts: '$e:example.org' };
    const out = redactForClient(ev('m.room.message', { body: 'x' }), redaction, '10');
    expect(out.unsigned).toEqual({ redacted_because: redaction });
    expect(out.content).toEqual({});
    expect(out.event_id).toBe('$e:example.org');
  });
});

describe('redactsOf', () => {
  it('reads top-level before v11 and content in v11, without fallback', () => {
    const r = { redacts: '$top', content: { redacts: '$content' } };
    expect(redactsOf(r, '10')).toBe('$top');
    expect(redactsOf(r, '11')).toBe('$content');
    expect(redactsOf({ content: { redacts: '$c' } }, '10')).toBeUndefined();
    expect(redactsOf({ redacts: '$t', content: {} }, '11')).toBeUndefined();
  });
});

describe('resolveRoomVersion', () => {
  it('accepts ids and objects, rejects unknown', () => {
    expect(resolveRoomVersion('9')).toBe(getRoomVersion('9'));
    expect(resolveRoomVersion(getRoomVersion('3')!)).toBe(getRoomVersion('3'));
    expect(() => resolveRoomVersion('12x')).toThrow(/unknown room version/);
  });
});
