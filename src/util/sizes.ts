/** Parses Synapse-style sizes: 50M, 10K, 1G, or a plain number of bytes. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$/i.exec(value);
  if (!m) throw new Error(`not a size: ${value}`);
  const mult: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toUpperCase()]!);
}

/** Parses Synapse-style durations: 5m, 1h, 30s, 7d, 2w, 1y, or milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$/.exec(value);
  if (!m) throw new Error(`not a duration: ${value}`);
  const mult: Record<string, number> = {
    ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000,
  };
  return Math.floor(Number(m[1]) * mult[m[2] ?? 'ms']!);
}
