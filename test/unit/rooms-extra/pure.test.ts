import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getRoomVersion } from '../../../src/matrix/room-versions.js';
import { stateKey, type RoomEvent } from '../../../src/matrix/types.js';
import { isValidEdit, latestEdit } from '../../../src/services/relations/aggregations.js';
import { spaceChildren } from '../../../src/services/hierarchy/hierarchy-service.js';
import { normalisePowerLevels } from '../../../src/services/room-upgrade/upgrade-service.js';
import { parseRoomEventsCriteria, searchWords } from '../../../src/services/search/search-service.js';
import { turnCredentials } from '../../../src/services/voip/turn-service.js';
import { searchableFields } from '../../../src/storage/rooms-extra/store.js';
import type { StoredEvent } from '../../../src/storage/rooms/store.js';
import { MatrixError } from '../../../src/util/errors.js';

const ev = (o: Partial<RoomEvent> & { event_id: string }): RoomEvent =>
  ({ room_id: '!r:x', sender: '@a:x', type: 'm.room.message', content: {}, origin_server_ts: 1, depth: 1, prev_events: [], auth_events: [], ...o }) as RoomEvent;
const stored = (e: RoomEvent): StoredEvent => ({
  event: e, roomId: e.room_id, streamOrdering: 1, topologicalOrdering: 1, outlier: false, rejectedReason: null, softFailed: false, redactedBy: null, unsignedExtra: null,
});

describe('turn credentials', () => {
  const base = { turn_uris: ['turn:turn.example.com?transport=udp'], turn_user_lifetime: 86_400_000, turn_allow_guests: true };
  it('answers {} without turn_uris', () => {
    expect(turnCredentials({ ...base, turn_uris: [], turn_shared_secret: 's' }, '@a:x', false)).toEqual({});
  });
  it('derives time-limited HMAC-SHA1 credentials from the shared secret', () => {
    const now = 1_700_000_000_000;
    const r = turnCredentials({ ...base, turn_shared_secret: 'sekrit' }, '@a:x', false, now);
    expect(r.username).toBe(`${1_700_000_000 + 86_400}:@a:x`);
    expect(r.password).toBe(createHmac('sha1', 'sekrit').update(r.username!).digest('base64'));
    expect(r.ttl).toBe(86_400);
    expect(r.uris).toEqual(base.turn_uris);
  });
  it('serves static credentials', () => {
    expect(turnCredentials({ ...base, turn_username: 'u', turn_password: 'p' }, '@a:x', false)).toEqual({ uris: base.turn_uris, username: 'u', password: 'p', ttl: 86_400 });
  });
  it('refuses guests when turn_allow_guests is false', () => {
    expect(() => turnCredentials({ ...base, turn_allow_guests: false, turn_username: 'u', turn_password: 'p' }, '@g:x', true)).toThrow(MatrixError);
  });
});

describe('edits', () => {
  const orig = ev({ event_id: '$o', content: { body: 'hi' } });
  const edit = (id: string, ts: number, o: Partial<RoomEvent> = {}) =>
    stored(ev({ event_id: id, origin_server_ts: ts, content: { body: '* x', 'm.new_content': { body: 'x' }, 'm.relates_to': { rel_type: 'm.replace', event_id: '$o' } }, ...o }));
  it('accepts only edits by the original sender, same type, with m.new_content', () => {
    expect(isValidEdit(orig, edit('$1', 2).event)).toBe(true);
    expect(isValidEdit(orig, edit('$2', 2, { sender: '@b:x' }).event)).toBe(false);
    expect(isValidEdit(orig, edit('$3', 2, { type: 'm.sticker' }).event)).toBe(false);
    expect(isValidEdit(orig, ev({ event_id: '$4', content: { 'm.relates_to': { rel_type: 'm.replace', event_id: '$o' } } }))).toBe(false);
    expect(isValidEdit({ ...orig, state_key: '' }, edit('$5', 2).event)).toBe(false);
  });
  it('picks the newest by origin_server_ts, ties by event id', () => {
    expect(latestEdit(orig, [edit('$a', 5), edit('$b', 9), edit('$c', 7)])!.event.event_id).toBe('$b');
    expect(latestEdit(orig, [edit('$b', 9), edit('$z', 9), edit('$y', 9)])!.event.event_id).toBe('$z');
    expect(latestEdit(orig, [edit('$b', 99, { sender: '@evil:x' })])).toBeUndefined();
  });
});

describe('space children', () => {
  it('keeps children with via and orders by order, ts, room id', () => {
    const state = new Map<string, RoomEvent>();
    const child = (room: string, content: Record<string, unknown>, ts: number) =>
      state.set(stateKey('m.space.child', room), ev({ event_id: `$${room}`, type: 'm.space.child', state_key: room, content, origin_server_ts: ts }));
    child('!c:x', { via: ['x'] }, 1);
    child('!b:x', { via: ['x'], order: 'b' }, 5);
    child('!a:x', { via: ['x'], order: 'a' }, 9);
    child('!d:x', { via: ['x'] }, 0);
    child('!gone:x', {}, 0);
    child('!bad:x', { via: ['x'], order: '\u0001' }, 3);
    const room = { roomId: '!s:x', rv: getRoomVersion('10')!, state, stateGroup: 1, deltaDepth: 0, extremities: [] };
    expect(spaceChildren(room).map((c) => c.roomId)).toEqual(['!a:x', '!b:x', '!d:x', '!c:x', '!bad:x']);
  });
});

describe('upgrade power levels', () => {
  it('turns string levels into integers for v10+ rooms', () => {
    const pl = normalisePowerLevels({ users: { '@a:x': '100', '@b:x': 'x' }, ban: '50', events: { 'm.room.name': 50.5 }, state_default: 50 }, getRoomVersion('10')!);
    expect(pl).toEqual({ users: { '@a:x': 100 }, ban: 50, events: { 'm.room.name': 50 }, state_default: 50 });
  });
});

describe('search parsing', () => {
  it('splits terms into words', () => {
    expect(searchWords('Hello, wörld! hello  ')).toEqual(['hello', 'wörld']);
    expect(searchWords('"; DROP TABLE')).toEqual(['drop', 'table']);
  });
  it('validates criteria', () => {
    expect(() => parseRoomEventsCriteria({})).toThrow(/search_term/);
    expect(() => parseRoomEventsCriteria({ search_term: 'x', keys: ['content.nope'] })).toThrow(/search key/);
    expect(() => parseRoomEventsCriteria({ search_term: 'x', order_by: 'best' })).toThrow(/order_by/);
    expect(() => parseRoomEventsCriteria({ search_term: 'x', groupings: { group_by: [{ key: 'type' }] } })).toThrow(/group_by/);
    const c = parseRoomEventsCriteria({ search_term: 'x', order_by: 'recent', event_context: { before_limit: 2 } });
    expect(c).toMatchObject({ orderBy: 'recent', keys: ['content.body', 'content.name', 'content.topic'], eventContext: { beforeLimit: 2, afterLimit: 5, includeProfile: false } });
  });
  it('indexes body, name and topic only', () => {
    expect(searchableFields('m.room.message', { body: 'hi' })).toEqual([['content.body', 'hi']]);
    expect(searchableFields('m.room.topic', { topic: 't' })).toEqual([['content.topic', 't']]);
    expect(searchableFields('m.room.encrypted', { ciphertext: 'x' })).toEqual([]);
  });
});
