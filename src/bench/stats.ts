/**
 * Pure statistics for the load generator.
 *
 * Percentiles use LINEAR INTERPOLATION between closest ranks (the method
 * numpy calls "linear", R calls type 7 and spreadsheets call PERCENTILE.INC):
 * for sorted values x[0..n-1] and p in [0, 100], the rank is
 * h = (n - 1) * p / 100 and the result is x[⌊h⌋] + (h - ⌊h⌋) · (x[⌈h⌉] - x[⌊h⌋]).
 * So p0 is the minimum, p100 the maximum and p50 the usual median.
 * An empty sample has no percentiles: the result is NaN (printed "–",
 * written as null in JSON).
 */

export function percentileSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
  const n = sorted.length;
  if (n === 0) return NaN;
  if (n === 1) return sorted[0]!;
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (h - lo) * (b - a);
}

/** Percentile of an unsorted sample (the input is not modified). */
export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(sortNumbers(values), p);
}

export function sortNumbers(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export interface Summary {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

export function summarize(values: readonly number[]): Summary {
  const s = sortNumbers(values);
  const n = s.length;
  return {
    count: n,
    min: n ? s[0]! : NaN,
    max: n ? s[n - 1]! : NaN,
    mean: n ? s.reduce((a, b) => a + b, 0) / n : NaN,
    p50: percentileSorted(s, 50),
    p95: percentileSorted(s, 95),
    p99: percentileSorted(s, 99),
  };
}

export interface MedianRange {
  /** Number of finite values the figure is made of. */
  n: number;
  median: number;
  min: number;
  max: number;
}

/**
 * Median and range (min–max) of repeated rounds of one figure. Non-finite
 * values (a round that produced no figure) are left out; if none remain the
 * figures are NaN.
 */
export function medianRange(values: readonly number[]): MedianRange {
  const s = sortNumbers(values.filter((v) => Number.isFinite(v)));
  const n = s.length;
  if (n === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  return { n, median: percentileSorted(s, 50), min: s[0]!, max: s[n - 1]! };
}

/** Events (or requests) per second; NaN when no time passed. */
export function ratePerSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (count * 1000) / elapsedMs : NaN;
}
