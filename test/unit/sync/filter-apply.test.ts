import { describe, expect, it } from 'vitest';
import { applyEventFilter, asSyncFilter, eventMatches, projectEventFields, roomAllowed, typeMatches } from '../../../src/matrix/filter-apply.js';
import { MatrixError } from '../../../src/util/errors.js';

const ev = (type: string, sender = '@a:x', content: Record<string, unknown> = {}, room_id = '!r:x') => ({ type, sender, content, room_id });

describe('filter application', () => {
  it('matches types with * wildcards', () => {
    expect(typeMatches('m.room.*', 'm.room.message')).toBe(true);
    expect(typeMatches('m.room.*', 'm.roomx')).toBe(false);
    expect(typeMatches('m.*.message', 'm.room.message')).toBe(true);
    expect(typeMatches('m.room.message', 'm.room.messages')).toBe(false);
    expect(typeMatches('*', 'anything')).toBe(true);
    expect(typeMatches('m.room.[x]', 'm.room.x')).toBe(false);
  });

  it('types and not_types (not wins)', () => {
    const f = { types: ['m.room.*'], not_types: ['m.room.member'] };
    expect(eventMatches(f, ev('m.room.message'))).toBe(true);
    expect(eventMatches(f, ev('m.room.member'))).toBe(false);
    expect(eventMatches(f, ev('m.reaction'))).toBe(false);
    expect(eventMatches({ types: [] }, ev('m.room.message'))).toBe(false);
  });

  it('senders and not_senders (not wins)', () => {
    expect(eventMatches({ senders: ['@a:x'] }, ev('t', '@a:x'))).toBe(true);
    expect(eventMatches({ senders: ['@a:x'] }, ev('t', '@b:x'))).toBe(false);
    expect(eventMatches({ senders: ['@a:x'], not_senders: ['@a:x'] }, ev('t', '@a:x'))).toBe(false);
    expect(eventMatches({ not_senders: ['@b:x'] }, ev('t', '@a:x'))).toBe(true);
  });

  it('rooms and not_rooms', () => {
    expect(roomAllowed({ rooms: ['!a:x'] }, '!a:x')).toBe(true);
    expect(roomAllowed({ rooms: ['!a:x'] }, '!b:x')).toBe(false);
    expect(roomAllowed({ rooms: ['!a:x'], not_rooms: ['!a:x'] }, '!a:x')).toBe(false);
    expect(roomAllowed(undefined, '!a:x')).toBe(true);
    expect(eventMatches({ not_rooms: ['!r:x'] }, ev('t'))).toBe(false);
  });

  it('contains_url', () => {
    const withUrl = ev('m.room.message', '@a:x', { url: 'mxc://x/y' });
    const without = ev('m.room.message', '@a:x', { body: 'hi' });
    expect(eventMatches({ contains_url: true }, withUrl)).toBe(true);
    expect(eventMatches({ contains_url: true }, without)).toBe(false);
    expect(eventMatches({ contains_url: false }, withUrl)).toBe(false);
    expect(eventMatches({ contains_url: false }, without)).toBe(true);
    expect(eventMatches({}, withUrl)).toBe(true);
  });

  it('limit keeps the newest matching events', () => {
    const list = [ev('a'), ev('b'), ev('a'), ev('c'), ev('a')].map((e, i) => ({ ...e, i }));
    expect(applyEventFilter({ types: ['a'], limit: 2 }, list).map((e) => e.i)).toEqual([2, 4]);
    expect(applyEventFilter(undefined, list, 3).map((e) => e.i)).toEqual([2, 3, 4]);
  });

  it('event_fields projection with escaped dots', () => {
    const e = { type: 't', sender: '@a:x', content: { body: 'hi', 'm.rel': 1, other: 2 }, event_id: '$e' };
    expect(projectEventFields(e, ['type', 'content.body', 'content.m\\.rel'])).toEqual({ type: 't', content: { body: 'hi', 'm.rel': 1 } });
    expect(projectEventFields(e, undefined)).toBe(e);
  });

  it('shape-checks inline filters with M_BAD_JSON', () => {
    expect(asSyncFilter({ room: { timeline: { limit: 5 } } }).room?.timeline?.limit).toBe(5);
    for (const bad of [[], 'x', { room: { timeline: { limit: 'many' } } }, { room: { state: { types: 'm.room.name' } } }, { presence: { senders: [1] } }, { event_format: 'xml' }, { room: { include_leave: 'yes' } }, { room: { timeline: { lazy_load_members: 1 } } }]) {
      try {
        asSyncFilter(bad);
        expect.unreachable(JSON.stringify(bad));
      } catch (e) {
        expect((e as MatrixError).errcode).toBe('M_BAD_JSON');
      }
    }
  });
});
