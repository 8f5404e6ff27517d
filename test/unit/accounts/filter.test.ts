import { describe, expect, it } from 'vitest';
import { decodeFilterJson, parseFilterParam, validateFilter } from '../../../src/matrix/filter.js';
import { MatrixError } from '../../../src/util/errors.js';

function errcodeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as MatrixError).errcode;
  }
}

describe('filter validation', () => {
  it('accepts the spec example filter', () => {
    const example = {
      event_fields: ['type', 'content', 'sender'],
      event_format: 'client',
      presence: { not_senders: ['@alice:example.com'], types: ['m.presence'] },
      room: {
        ephemeral: { not_rooms: ['!726s6s6q:example.com'], not_senders: ['@spam:example.com'], types: ['m.receipt', 'm.typing'] },
        rooms: ['!726s6s6q:example.com'],
        state: { not_rooms: ['!726s6s6q:example.com'], types: ['m.room.*'] },
        timeline: { limit: 10, not_rooms: ['!726s6s6q:example.com'], not_senders: ['@spam:example.com'], types: ['m.room.message'] },
      },
    };
    expect(validateFilter(example)).toEqual(example);
    expect(validateFilter({})).toEqual({});
  });

  it('accepts every RoomEventFilter flag', () => {
    const f = { room: { timeline: { contains_url: true, lazy_load_members: true, include_redundant_members: false, unread_thread_notifications: true }, include_leave: true } };
    expect(validateFilter(f)).toEqual(f);
  });

  it('answers wrong types with M_BAD_JSON', () => {
    for (const f of [
      null,
      [],
      'x',
      { event_fields: 'type' },
      { event_fields: [1] },
      { event_format: 1 },
      { presence: [] },
      { presence: { limit: 1.5 } },
      { presence: { types: 'm.presence' } },
      { account_data: { not_types: [null] } },
      { room: 'all' },
      { room: { rooms: '!a:b' } },
      { room: { include_leave: 1 } },
      { room: { timeline: { lazy_load_members: 'true' } } },
      { room: { state: { limit: '5' } } },
    ]) {
      expect(errcodeOf(() => validateFilter(f)), JSON.stringify(f)).toBe('M_BAD_JSON');
    }
  });

  it('answers unacceptable values with M_INVALID_PARAM', () => {
    for (const f of [
      { event_format: 'xml' },
      { room: { timeline: { limit: 0 } } },
      { room: { timeline: { limit: -5 } } },
      { room: { rooms: ['room'] } },
      { room: { ephemeral: { not_rooms: ['#alias:b'] } } },
      { presence: { senders: ['alice'] } },
      { event_fields: [''] },
    ]) {
      expect(errcodeOf(() => validateFilter(f)), JSON.stringify(f)).toBe('M_INVALID_PARAM');
    }
  });

  it('tells inline filters from filter ids', () => {
    expect(parseFilterParam('12')).toEqual({ filterId: '12' });
    expect(parseFilterParam('{"room":{"timeline":{"limit":1}}}')).toEqual({ filter: { room: { timeline: { limit: 1 } } } });
    // Not JSON at all: M_BAD_JSON as well (the spec names no code for a query parameter).
    expect(errcodeOf(() => parseFilterParam('{nope'))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => decodeFilterJson('nope'))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseFilterParam('{"room":[]}'))).toBe('M_BAD_JSON');
  });
});
