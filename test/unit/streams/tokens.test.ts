import { describe, expect, it } from 'vitest';
import { decodeSyncToken, emptyToken, encodeSyncToken, tokenCovers } from '../../../src/streams/tokens.js';
import { MatrixError } from '../../../src/util/errors.js';

describe('sync tokens', () => {
  it('round-trips a token', () => {
    const t = { ...emptyToken(), events: { min: 42 }, typing: 3, receipts: 9, to_device: 11, push_rules: 2 };
    const s = encodeSyncToken(t);
    expect(s).toBe('s1_42_3_9_0_0_11_0_2');
    expect(decodeSyncToken(s)).toEqual(t);
  });

  it('round-trips a multi-writer events position', () => {
    const t = { ...emptyToken(), events: { min: 5, writers: { 'event_persister-1': 9, w2: 7 } } };
    const s = encodeSyncToken(t);
    expect(s.startsWith('s1_m5~')).toBe(true);
    expect(decodeSyncToken(s).events).toEqual(t.events);
  });

  it('reads missing trailing streams as 0 (older tokens)', () => {
    expect(decodeSyncToken('s1_10_2').receipts).toBe(0);
    expect(decodeSyncToken('s1_10_2').typing).toBe(2);
  });

  it.each(['', 'garbage', 's2_1_2', 's1_', 's1_x', 's1_1_-2', 's1_1_2_3_4_5_6_7_8_9', 's1_1_1.5', 's1_99999999999999999999', 's1_1_99999999999999999999', 's1_m1~w.x', 's1_m1~w.99999999999999999999', 's1_1__2', 's1_1_2_'])(
    'rejects %j with M_INVALID_PARAM',
    (s) => {
      try {
        decodeSyncToken(s);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(MatrixError);
        expect((e as MatrixError).errcode).toBe('M_INVALID_PARAM');
      }
    },
  );

  it('encodes writer parts at or below the minimum as a plain position', () => {
    const t = { ...emptyToken(), events: { min: 9, writers: { a: 9, b: 3 } }, receipts: 4 };
    expect(encodeSyncToken(t)).toBe('s1_9_0_4_0_0_0_0_0');
    expect(encodeSyncToken({ ...t, events: { min: 9, writers: { a: 12, b: 3 } } })).toBe('s1_m9~a.12_0_4_0_0_0_0_0');
  });

  it('compares tokens', () => {
    const a = { ...emptyToken(), events: { min: 5 }, typing: 2 };
    const b = { ...emptyToken(), events: { min: 5 }, typing: 1 };
    expect(tokenCovers(a, b)).toBe(true);
    expect(tokenCovers(b, a)).toBe(false);
  });
});
