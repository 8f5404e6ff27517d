/**
 * The events part of sync tokens with several event persisters
 * (`m<min>~<writer>.<pos>...`): compact when every writer is at the
 * minimum, old plain tokens still read, and comparisons writer by writer.
 */
import { describe, expect, it } from 'vitest';
import { Notifier } from '../../../src/streams/notifier.js';
import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import {
  decodeSyncToken,
  emptyToken,
  encodeSyncToken,
  eventsCovers,
  eventsPositionFor,
  sameEventsPosition,
  tokenCovers,
  type EventsPosition,
} from '../../../src/streams/tokens.js';

const tok = (events: EventsPosition) => ({ ...emptyToken(), events });

describe('per-writer events positions in sync tokens', () => {
  it('is a plain number when no writer is ahead of the minimum (compact, and what older tokens were)', () => {
    expect(encodeSyncToken(tok({ min: 7 }))).toBe('s1_7_0_0_0_0_0_0_0');
    expect(encodeSyncToken(tok({ min: 7, writers: { p1: 7, p2: 3 } }))).toBe('s1_7_0_0_0_0_0_0_0');
    expect(decodeSyncToken('s1_7_0_0_0_0_0_0_0').events).toEqual({ min: 7 });
    expect(decodeSyncToken('s1_7').events).toEqual({ min: 7 });
  });

  it('names only the writers ahead, escaping what would clash with the separators', () => {
    const s = encodeSyncToken(tok({ min: 7, writers: { event_persister1: 9, 'a.b~c': 8, p3: 7 } }));
    expect(s.split('_')).toHaveLength(9);
    expect(s).toMatch(/^s1_m7~/);
    expect(s).not.toContain('p3');
    expect(decodeSyncToken(s).events).toEqual({ min: 7, writers: { event_persister1: 9, 'a.b~c': 8 } });
  });

  it('refuses malformed writer parts', () => {
    for (const bad of ['s1_m7~p1', 's1_m7~p1.', 's1_m7~.5', 's1_mx~p1.5', 's1_m7~p%ZZ.5', 's1_m7~p1.99999999999999999999']) {
      expect(() => decodeSyncToken(bad), bad).toThrow(/Invalid sync token/);
    }
  });

  it('gives each writer its own position, the minimum for the others', () => {
    const p = { min: 10, writers: { p1: 15 } };
    expect(eventsPositionFor(p, 'p1')).toBe(15);
    expect(eventsPositionFor(p, 'p2')).toBe(10);
    expect(eventsPositionFor({ min: 10, writers: { p1: 4 } }, 'p1')).toBe(10);
  });

  it('compares writer by writer', () => {
    const a = { min: 10, writers: { p1: 20 } };
    const b = { min: 10, writers: { p2: 15 } };
    // a is far ahead on p1 but has not seen p2 past 10
    expect(eventsCovers(a, b)).toBe(false);
    expect(eventsCovers(b, a)).toBe(false);
    expect(eventsCovers({ min: 15, writers: { p1: 20 } }, a)).toBe(true);
    expect(eventsCovers({ min: 15, writers: { p1: 20 } }, b)).toBe(true);
    expect(eventsCovers({ min: 9, writers: { p1: 30, p2: 30 } }, { min: 10 })).toBe(false);
    expect(tokenCovers(tok(a), tok(b))).toBe(false);
    expect(tokenCovers(tok({ min: 20 }), tok(a))).toBe(true);
    expect(sameEventsPosition({ min: 5, writers: { p1: 5 } }, { min: 5 })).toBe(true);
    expect(sameEventsPosition({ min: 5, writers: { p1: 6 } }, { min: 5 })).toBe(false);
  });

  it('a single-writer stream reports its position as the minimum', () => {
    const g = new StreamIdGenerator(4);
    expect(g.getPosition()).toEqual({ min: 4 });
  });

  it('waitForToken waits for the writer a token is ahead on, not for every writer', async () => {
    // A stand-in for the multi-writer events stream: p2 lags, p1 is ahead.
    class TwoWriters extends StreamIdGenerator {
      pos: EventsPosition = { min: 10, writers: { p1: 20 } };
      override getCurrent(): number {
        return this.pos.min;
      }
      override getPosition(): EventsPosition {
        return this.pos;
      }
    }
    const events = new TwoWriters(10);
    const n = new Notifier({ events });
    // Ahead of the minimum on p1 only: covered by p1's position at once.
    expect(await n.waitForToken(tok({ min: 10, writers: { p1: 18 } }), 0)).toBe(true);
    // Ahead on p2: not covered until p2 moves.
    expect(await n.waitForToken(tok({ min: 10, writers: { p2: 12 } }), 0)).toBe(false);
  });
});
