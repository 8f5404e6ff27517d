/**
 * A small seeded PRNG so workloads (room choice, message sizes) repeat for a
 * given --seed. mulberry32 seeded from the FNV-1a hash of the seed string.
 */

export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  private state: number;
  constructor(seed: string) {
    this.state = fnv1a32(seed) || 1;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from empty list');
    return items[this.int(items.length)]!;
  }
  /** Lowercase base-36 string of `len` characters (valid in Matrix localparts). */
  token(len: number): string {
    let s = '';
    while (s.length < len) s += this.int(36).toString(36);
    return s;
  }
}

/**
 * The run id that prefixes every user name the bench registers. It is drawn
 * from the seeded generator mixed with a salt (the start time by default), so
 * the same --seed gives the same workload while two runs against one server
 * never collide on user names.
 */
export function makeRunId(seed: string, salt: string): string {
  return 'b' + new Rng(`${seed}/${salt}`).token(7);
}
