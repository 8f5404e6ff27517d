import { StreamIdGenerator } from '../../../src/streams/id-generator.js';
import type { EventsPosition } from '../../../src/streams/tokens.js';

/** A reader's view of an events stream with two writers, p1 and p2, whose own positions the test sets. */
export class TwoWriters extends StreamIdGenerator {
  readonly pos: Record<string, number>;
  private readonly subs = new Set<(pos: number) => void>();

  constructor(at = 0) {
    super(at);
    this.pos = { p1: at, p2: at };
  }
  override getCurrent(): number {
    return Math.min(...Object.values(this.pos));
  }
  override getPosition(): EventsPosition {
    const min = this.getCurrent();
    const writers = Object.fromEntries(Object.entries(this.pos).filter(([, p]) => p > min));
    return Object.keys(writers).length ? { min, writers } : { min };
  }
  override onAdvance(l: (pos: number) => void): () => void {
    this.subs.add(l);
    return () => this.subs.delete(l);
  }
  /** Moves `writer`'s own position and tells the listeners the minimum. */
  set(writer: string, p: number): void {
    this.pos[writer] = p;
    for (const l of this.subs) l(this.getCurrent());
  }
}
