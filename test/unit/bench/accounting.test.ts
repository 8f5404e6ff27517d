import { describe, expect, it } from 'vitest';
import { DeliveryLedger } from '../../../src/bench/accounting.js';

describe('DeliveryLedger exactly-once accounting', () => {
  it('counts a clean run as exactly once', () => {
    const l = new DeliveryLedger();
    l.expect('$a', 100, ['r1', 'r2']);
    l.expect('$b', 200, ['r1', 'r2']);
    expect(l.pending).toBe(4);
    l.arrive('r1', '$a', 110);
    l.arrive('r2', '$a', 130);
    l.arrive('r1', '$b', 205);
    expect(l.isComplete()).toBe(false);
    l.arrive('r2', '$b', 250);
    expect(l.isComplete()).toBe(true);
    const acc = l.account();
    expect(acc).toMatchObject({ events: 2, expected: 4, delivered: 4, missing: 0, duplicates: 0, unexpected: 0, exactlyOnce: true });
    expect(l.latencies().sort((a, b) => a - b)).toEqual([5, 10, 30, 50]);
  });

  it('counts missing and duplicate deliveries per receiver', () => {
    const l = new DeliveryLedger();
    l.expect('$a', 0, ['r1', 'r2']);
    l.expect('$b', 0, ['r1', 'r2']);
    l.arrive('r1', '$a', 1);
    l.arrive('r1', '$a', 2);
    l.arrive('r1', '$a', 3);
    l.arrive('r1', '$b', 1);
    l.arrive('r2', '$a', 1);
    const acc = l.account();
    expect(acc.missing).toBe(1);
    expect(acc.duplicates).toBe(2);
    expect(acc.delivered).toBe(3);
    expect(acc.exactlyOnce).toBe(false);
    expect(acc.perReceiver).toEqual([
      { receiver: 'r1', missing: 0, duplicates: 2 },
      { receiver: 'r2', missing: 1, duplicates: 0 },
    ]);
    // Duplicates do not count towards completion or latency twice.
    expect(l.pending).toBe(1);
    expect(l.latencies()).toHaveLength(3);
  });

  it('accepts arrivals reported before the acknowledgement, clamping latency at 0', () => {
    const l = new DeliveryLedger();
    l.arrive('r1', '$a', 90);
    l.expect('$a', 100, ['r1', 'r2']);
    expect(l.pending).toBe(1);
    expect(l.hasReachedAll('$a')).toBe(false);
    l.arrive('r2', '$a', 120);
    expect(l.hasReachedAll('$a')).toBe(true);
    expect(l.lastFirstArrival('$a')).toBe(120);
    expect(l.latencies().sort((a, b) => a - b)).toEqual([0, 20]);
    expect(l.account().exactlyOnce).toBe(true);
  });

  it('counts unexpected events and receivers as unexpected, not delivered', () => {
    const l = new DeliveryLedger();
    l.expect('$a', 0, ['r1']);
    l.arrive('r1', '$a', 1);
    l.arrive('r9', '$a', 1); // a receiver that should not see it
    l.arrive('r1', '$zzz', 1); // never acknowledged
    const acc = l.account();
    expect(acc).toMatchObject({ delivered: 1, missing: 0, duplicates: 0, unexpected: 2, exactlyOnce: false });
  });

  it('refuses to acknowledge one event twice', () => {
    const l = new DeliveryLedger();
    l.expect('$a', 0, ['r1']);
    expect(() => l.expect('$a', 1, ['r1'])).toThrow(/twice/);
  });

  it('an event with no arrivals is not "reached"', () => {
    const l = new DeliveryLedger();
    expect(l.hasReachedAll('$nope')).toBe(false);
    l.expect('$a', 0, ['r1']);
    expect(l.lastFirstArrival('$a')).toBeNaN();
  });

  it('traces every expected delivery with its ack and first arrival', () => {
    const l = new DeliveryLedger();
    l.expect('$a', 10, ['r1', 'r2']);
    l.arrive('r1', '$a', 14);
    l.arrive('r1', '$a', 30); // a duplicate: the first arrival counts
    l.arrive('r9', '$zzz', 1); // never acknowledged: not traced
    expect(l.trace()).toEqual([
      { eventId: '$a', receiver: 'r1', ackAt: 10, at: 14 },
      { eventId: '$a', receiver: 'r2', ackAt: 10, at: undefined },
    ]);
  });
});
