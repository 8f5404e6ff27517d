import { describe, expect, it } from 'vitest';
import { medianRange, percentile, ratePerSecond, summarize } from '../../../src/bench/stats.js';
import { aggregateRounds, fmt, fmtMedianRange, formatTable, toJson } from '../../../src/bench/report.js';

describe('percentile (linear interpolation, numpy "linear")', () => {
  const x = [50, 15, 40, 20, 35]; // unsorted on purpose
  it('matches numpy.percentile on a known sample', () => {
    // numpy.percentile([15,20,35,40,50], p) for these p:
    expect(percentile(x, 0)).toBe(15);
    expect(percentile(x, 25)).toBe(20);
    expect(percentile(x, 40)).toBeCloseTo(29, 10);
    expect(percentile(x, 50)).toBe(35);
    expect(percentile(x, 95)).toBeCloseTo(48, 10);
    expect(percentile(x, 99)).toBeCloseTo(49.6, 10);
    expect(percentile(x, 100)).toBe(50);
  });
  it('does not reorder its input', () => {
    percentile(x, 50);
    expect(x).toEqual([50, 15, 40, 20, 35]);
  });
  it('median of an even sample is the mean of the middle two', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
  });
  it('one value is every percentile; no values give NaN', () => {
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
  it('rejects p outside [0, 100]', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
  });
  it('summarize gives count, min, max, mean and p50/p95/p99', () => {
    const s = summarize(Array.from({ length: 101 }, (_, i) => i));
    expect(s).toEqual({ count: 101, min: 0, max: 100, mean: 50, p50: 50, p95: 95, p99: 99 });
    expect(summarize([]).count).toBe(0);
    expect(summarize([]).p50).toBeNaN();
  });
});

describe('medianRange', () => {
  it('gives median, min and max over rounds', () => {
    expect(medianRange([3, 1, 2])).toEqual({ n: 3, median: 2, min: 1, max: 3 });
    expect(medianRange([4, 1, 2, 3])).toEqual({ n: 4, median: 2.5, min: 1, max: 4 });
  });
  it('skips rounds without a figure', () => {
    expect(medianRange([NaN, 5, Infinity])).toEqual({ n: 1, median: 5, min: 5, max: 5 });
    expect(medianRange([]).median).toBeNaN();
  });
});

describe('rates and reports', () => {
  it('ratePerSecond', () => {
    expect(ratePerSecond(50, 500)).toBe(100);
    expect(ratePerSecond(5, 0)).toBeNaN();
  });
  it('aggregateRounds takes every figure seen in any round', () => {
    const agg = aggregateRounds([
      { round: 1, metrics: { a: 1, b: 10 }, ok: true, problems: [] },
      { round: 2, metrics: { a: 3 }, ok: true, problems: [] },
      { round: 3, metrics: { a: 2, b: 30 }, ok: true, problems: [] },
    ]);
    expect(agg.a).toEqual({ n: 3, median: 2, min: 1, max: 3 });
    expect(agg.b).toEqual({ n: 2, median: 20, min: 10, max: 30 });
  });
  it('formats figures', () => {
    expect(fmt(NaN)).toBe('–');
    expect(fmt(12)).toBe('12');
    expect(fmt(1234.567)).toBe('1235');
    expect(fmt(12.345)).toBe('12.3');
    expect(fmt(0.01234)).toBe('0.012');
    expect(fmtMedianRange({ n: 3, median: 2, min: 1, max: 3.5 })).toBe('2 [1–3.50]');
    expect(fmtMedianRange({ n: 1, median: 2, min: 2, max: 2 })).toBe('2');
    expect(formatTable([['a', 'bb'], ['ccc', '1']])).toBe('a    bb\n---  --\nccc   1');
    expect(JSON.parse(toJson({ x: NaN, y: 1 }))).toEqual({ x: null, y: 1 });
  });
});
