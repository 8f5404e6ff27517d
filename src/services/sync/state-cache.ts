/**
 * The state after events (key "type\0state_key" -> event id), for /sync:
 * the state before each timeline, invite and knock state.
 *
 * Both things it keeps never change once written, so no invalidation is
 * needed in any process: the state group an event's state was stored under
 * (the state_group of its events row) and a state group's full state
 * (state_groups and state_groups_state are only ever inserted). Only what was read is kept
 * (an event without a group yet is asked again next time).
 *
 * Misses cost one statement: events whose group is unknown are resolved
 * together with their groups' state (SyncStore.stateAfterEvents); groups
 * known from an earlier event but no longer kept are read on their own.
 * Bounded by events and by state entries over all groups (least recently
 * used first); a group larger than a quarter of the bound is not kept.
 */
import type { SyncStore } from '../../storage/sync/sync-store.js';

export type StateMap = ReadonlyMap<string, string>;

export interface StateCacheLimits {
  /** Event -> state group entries. */
  maxEvents: number;
  /** State entries summed over the kept groups. */
  maxStateEntries: number;
}

const DEFAULT_LIMITS: StateCacheLimits = { maxEvents: 20_000, maxStateEntries: 100_000 };

export class StateCache {
  private readonly groupOf = new Map<string, number>();
  private readonly states = new Map<number, StateMap>();
  private stateEntries = 0;
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly store: Pick<SyncStore, 'stateAfterEvents' | 'stateOfGroups'>,
    private readonly limits: StateCacheLimits = DEFAULT_LIMITS,
  ) {}

  /**
   * The state after each event (shared maps: never modify them). Events
   * without a state group are absent.
   */
  async statesAfter(eventIds: readonly string[]): Promise<Map<string, StateMap>> {
    const out = new Map<string, StateMap>();
    const unknown: string[] = [];
    const groupsToRead = new Set<number>();
    const waiting: Array<[string, number]> = [];
    for (const id of new Set(eventIds)) {
      const g = this.groupOf.get(id);
      if (g === undefined) {
        unknown.push(id);
        continue;
      }
      this.touch(this.groupOf, id, g);
      const st = this.states.get(g);
      if (st) {
        this.touch(this.states, g, st);
        out.set(id, st);
        this.stats.hits++;
      } else {
        groupsToRead.add(g);
        waiting.push([id, g]);
      }
    }
    if (!unknown.length && !groupsToRead.size) return out;
    this.stats.misses += unknown.length + waiting.length;
    const [fresh, groups] = await Promise.all([
      unknown.length ? this.store.stateAfterEvents(unknown) : undefined,
      groupsToRead.size ? this.store.stateOfGroups([...groupsToRead]) : undefined,
    ]);
    if (groups) {
      for (const [g, st] of groups) this.keepState(g, st);
      for (const [id, g] of waiting) out.set(id, groups.get(g) ?? EMPTY);
    }
    if (fresh) {
      for (const [g, st] of fresh.states) this.keepState(g, st);
      for (const [id, g] of fresh.groups) {
        this.keepGroupOf(id, g);
        out.set(id, fresh.states.get(g) ?? EMPTY);
      }
    }
    return out;
  }

  /** Forgets everything (tests). */
  clear(): void {
    this.groupOf.clear();
    this.states.clear();
    this.stateEntries = 0;
  }

  private keepGroupOf(eventId: string, group: number): void {
    if (this.groupOf.size >= this.limits.maxEvents) this.groupOf.delete(this.groupOf.keys().next().value!);
    this.groupOf.set(eventId, group);
  }

  private keepState(group: number, st: StateMap): void {
    if (this.states.has(group) || st.size > this.limits.maxStateEntries / 4) return;
    while (this.stateEntries + st.size > this.limits.maxStateEntries && this.states.size) {
      const [g, old] = this.states.entries().next().value!;
      this.states.delete(g);
      this.stateEntries -= old.size;
    }
    this.states.set(group, st);
    this.stateEntries += st.size;
  }

  /** Moves an entry to the most recently used end. */
  private touch<K, V>(m: Map<K, V>, k: K, v: V): void {
    m.delete(k);
    m.set(k, v);
  }
}

const EMPTY: StateMap = new Map();
