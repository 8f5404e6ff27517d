/**
 * The conformance helper itself: path lookup, $ref resolution across files,
 * and that it accepts the spec's own examples and rejects wrong bodies (so a
 * passing conformance test means something).
 */
import { describe, expect, it } from 'vitest';
import { checkEvent, checkResponse, findOperation } from './spec.js';

describe('conformance helper', () => {
  it('finds operations by real request paths (r0 = v3, empty state key, literal paths first)', () => {
    expect(findOperation('GET', '/_matrix/client/versions')?.template).toBe('/_matrix/client/versions');
    expect(findOperation('PUT', '/_matrix/client/r0/rooms/!a%3Ab/send/m.room.message/1')?.template).toBe('/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}');
    expect(findOperation('PUT', '/_matrix/client/v3/rooms/!a%3Ab/state/m.room.topic')?.template).toBe('/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}');
    expect(findOperation('GET', '/_matrix/client/v3/pushrules/global/')?.template).toBe('/_matrix/client/v3/pushrules/global/');
    expect(findOperation('GET', '/_matrix/client/v1/rooms/!a/relations/$e/m.thread?limit=1')?.template).toBe('/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}');
    expect(findOperation('GET', '/_matrix/client/v3/no/such/endpoint')).toBeUndefined();
  });

  it('accepts conforming bodies and rejects wrong ones', () => {
    expect(checkResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: '@a:b', device_id: 'D' }).ok).toBe(true);
    const bad = checkResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: 'a:b' });
    expect(bad.ok).toBe(false);
    expect(bad.errors.join('\n')).toMatch(/user_id/);
    expect(checkResponse('GET', '/_matrix/client/v3/account/whoami', 200, {}).errors.join()).toMatch(/required property 'user_id'/);
  });

  it('resolves $refs into definitions/ (sync timeline events are client events)', () => {
    const r = checkResponse('GET', '/_matrix/client/v3/sync', 200, { next_batch: 's1', rooms: { join: { '!r:b': { timeline: { events: [{ type: 'm.room.message' }] } } } } });
    expect(r.ok).toBe(false);
    expect(r.errors.join('\n')).toMatch(/required property 'event_id'/);
  });

  it('checks error bodies, also for statuses the operation does not list', () => {
    expect(checkResponse('GET', '/_matrix/client/v3/account/whoami', 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'x' }).ok).toBe(true);
    expect(checkResponse('GET', '/_matrix/client/v3/account/whoami', 401, { error: 'no errcode' }).ok).toBe(false);
    expect(checkResponse('GET', '/_matrix/client/v3/sync', 418, { error: 'no errcode' }).ok).toBe(false);
    expect(checkResponse('GET', '/_matrix/client/v3/account/whoami', 201, { user_id: '@a:b' }).errors.join()).toMatch(/not documented/);
  });

  it('validates events against event-schemas, supplying the /sync room id', () => {
    const member = { type: 'm.room.member', state_key: '@a:b', sender: '@a:b', event_id: '$e', origin_server_ts: 1, content: { membership: 'join' } };
    expect(checkEvent(member, '!r:b')?.ok).toBe(true);
    expect(checkEvent(member)?.errors.join()).toMatch(/room_id/);
    expect(checkEvent({ ...member, content: { membership: 'joined' } }, '!r:b')?.ok).toBe(false);
    const text = { type: 'm.room.message', sender: '@a:b', event_id: '$e', origin_server_ts: 1, content: { msgtype: 'm.text' } };
    expect(checkEvent(text, '!r:b')?.errors.join()).toMatch(/body/);
    expect(checkEvent({ type: 'org.example.custom', content: {} })).toBeUndefined();
  });
});
