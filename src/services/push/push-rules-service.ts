/**
 * Push rules per user: the server defaults merged with the user's own rules
 * and changes (only the changes are stored). Stream: `push_rules`; /sync
 * serves the whole ruleset as the global account data event `m.push_rules`.
 */
import {
  buildRuleset,
  defaultRules,
  isDefaultRuleId,
  RULE_KINDS,
  type PushAction,
  type PushRule,
  type RuleKind,
  type Ruleset,
} from '../../matrix/push-rules.js';
import type { Db } from '../../storage/db.js';
import type { PushStore } from '../../storage/live/push-store.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import type { ClientEvent, PushRulesSource } from '../../streams/sync-sources.js';
import { Errors } from '../../util/errors.js';
import { KeyedLock } from '../../util/keyed-lock.js';

export interface PushRulesWriter {
  /** Creates or updates a user rule; `before`/`after` name user rules of the same kind. */
  putRule(userId: string, kind: RuleKind, rule: Omit<PushRule, 'default' | 'enabled'>, before?: string, after?: string): Promise<number>;
  deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<number>;
  setEnabled(userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<number>;
  setActions(userId: string, kind: RuleKind, ruleId: string, actions: PushAction[]): Promise<number>;
}

function isDefaultRule(userId: string, kind: RuleKind, ruleId: string): boolean {
  return defaultRules(userId, kind).some((r) => r.rule_id === ruleId);
}

export class LocalPushRulesWriter implements PushRulesWriter {
  constructor(
    private readonly db: Db,
    private readonly store: PushStore,
    private readonly gen: StreamIdGenerator,
    private readonly notifier: StreamNotifier,
    private readonly onChange: (userId: string) => void,
  ) {}

  /** One change per user at a time: each reads the user's rule list, reorders it and writes it back. */
  private readonly perUser = new KeyedLock();

  /** Runs the change and bumps the user's push_rules stream row in one transaction. */
  private async change(userId: string, fn: (tx: Parameters<Parameters<Db['transaction']>[0]>[0]) => Promise<void>): Promise<number> {
    const pos = await this.perUser.run(userId, () =>
      this.gen.withNext((id) =>
        this.db.transaction(async (tx) => {
          await fn(tx);
          await this.store.bumpStream(tx, userId, id);
          return id;
        }),
      ),
    );
    this.onChange(userId);
    this.notifier.notify({ stream: 'push_rules', position: pos, users: [userId] });
    return pos;
  }

  putRule(userId: string, kind: RuleKind, rule: Omit<PushRule, 'default' | 'enabled'>, before?: string, after?: string): Promise<number> {
    return this.change(userId, async (tx) => {
      const list = (await this.store.userRules(userId, tx)).filter((r) => r.kind === kind).map((r) => r.rule);
      const existingIdx = list.findIndex((r) => r.rule_id === rule.rule_id);
      const existing = existingIdx >= 0 ? list[existingIdx] : undefined;
      for (const anchor of [before, after]) {
        if (anchor === undefined) continue;
        if (isDefaultRuleId(anchor)) throw Errors.invalidParam('A rule cannot be placed relative to a server-default rule');
        if (anchor === rule.rule_id || !list.some((r) => r.rule_id === anchor)) throw Errors.notFound(`No rule ${anchor} of kind ${kind}`);
      }
      const rest = list.filter((r) => r.rule_id !== rule.rule_id);
      const updated: PushRule = { ...rule, default: false, enabled: existing ? existing.enabled : true };
      let at: number;
      if (before !== undefined) at = rest.findIndex((r) => r.rule_id === before);
      else if (after !== undefined) at = rest.findIndex((r) => r.rule_id === after) + 1;
      else at = existing ? existingIdx : 0; // new rules are the most important of their kind
      rest.splice(at, 0, updated);
      // Rewrite the priorities of the kind: first = most important = highest.
      for (let i = 0; i < rest.length; i++) await this.store.putUserRule(tx, userId, kind, rest[i]!, rest.length - i);
    });
  }

  deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<number> {
    if (isDefaultRuleId(ruleId)) {
      if (isDefaultRule(userId, kind, ruleId)) return Promise.reject(Errors.invalidParam('Server-default rules cannot be deleted'));
      return Promise.reject(Errors.notFound('Unknown push rule'));
    }
    return this.change(userId, async (tx) => {
      if (!(await this.store.deleteUserRule(tx, userId, kind, ruleId))) throw Errors.notFound('Unknown push rule');
    });
  }

  setEnabled(userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<number> {
    return this.change(userId, async (tx) => {
      if (isDefaultRuleId(ruleId)) {
        if (!isDefaultRule(userId, kind, ruleId)) throw Errors.notFound('Unknown push rule');
        await this.store.setDefaultOverride(tx, userId, kind, ruleId, { enabled });
      } else if (!(await this.store.setUserRuleEnabled(tx, userId, kind, ruleId, enabled))) {
        throw Errors.notFound('Unknown push rule');
      }
    });
  }

  setActions(userId: string, kind: RuleKind, ruleId: string, actions: PushAction[]): Promise<number> {
    return this.change(userId, async (tx) => {
      if (isDefaultRuleId(ruleId)) {
        if (!isDefaultRule(userId, kind, ruleId)) throw Errors.notFound('Unknown push rule');
        await this.store.setDefaultOverride(tx, userId, kind, ruleId, { actions });
      } else if (!(await this.store.setUserRuleActions(tx, userId, kind, ruleId, actions))) {
        throw Errors.notFound('Unknown push rule');
      }
    });
  }
}

export class PushRulesService implements PushRulesSource {
  private writer!: PushRulesWriter;
  private readonly cache = new Map<string, Ruleset>();
  /**
   * Reads in flight, one per user: the first events after a start evaluate
   * the same members in many rooms at once, and would each read them.
   */
  private readonly loading = new Map<string, Promise<Ruleset>>();
  /** Rulesets that are exactly the server defaults (no own rules, no changes). */
  private readonly defaultOnly = new WeakSet<Ruleset>();

  constructor(private readonly store: PushStore) {}

  setWriter(w: PushRulesWriter): void {
    this.writer = w;
  }

  /**
   * Counts the invalidations: what was derived from rulesets at one value
   * (push evaluation's split of a room's members) holds while it is unchanged.
   */
  version = 0;

  /** Drops the cached ruleset (called on every change). */
  invalidate(userId: string): void {
    this.version++;
    this.cache.delete(userId);
    this.loading.delete(userId); // a read in flight may predate the change: not cached
  }

  /** Drops every cached ruleset (worker mode: invalidations may have been missed). */
  invalidateAll(): void {
    this.version++;
    this.cache.clear();
    this.loading.clear();
  }

  /** The ruleset when cached (no await on the push evaluation path), else undefined. */
  cachedRuleset(userId: string): Ruleset | undefined {
    return this.cache.get(userId);
  }

  async getRuleset(userId: string): Promise<Ruleset> {
    const cached = this.cache.get(userId);
    if (cached) return cached;
    let p = this.loading.get(userId);
    if (!p) {
      p = this.load(userId);
      this.loading.set(userId, p);
    }
    const loading = p;
    try {
      const ruleset = await loading;
      // Cached only when no change dropped this read meanwhile.
      if (this.loading.get(userId) === loading) {
        if (this.cache.size > 10_000) this.cache.clear();
        this.cache.set(userId, ruleset);
      }
      return ruleset;
    } finally {
      if (this.loading.get(userId) === loading) this.loading.delete(userId);
    }
  }

  private async load(userId: string): Promise<Ruleset> {
    const own = {} as Record<RuleKind, PushRule[]>;
    for (const k of RULE_KINDS) own[k] = [];
    const [rules, overrides] = await Promise.all([this.store.userRules(userId), this.store.defaultOverrides(userId)]);
    for (const r of rules) own[r.kind]?.push(r.rule);
    const ruleset = buildRuleset(userId, own, overrides);
    if (overrides.size === 0 && RULE_KINDS.every((k) => own[k].length === 0)) this.defaultOnly.add(ruleset);
    return ruleset;
  }

  /** Whether a ruleset from getRuleset is exactly the server defaults (see DefaultRulesEvaluator). */
  isDefaultRuleset(ruleset: Ruleset): boolean {
    return this.defaultOnly.has(ruleset);
  }

  async getRule(userId: string, kind: RuleKind, ruleId: string): Promise<PushRule> {
    const rule = (await this.getRuleset(userId))[kind].find((r) => r.rule_id === ruleId);
    if (!rule) throw Errors.notFound('Unknown push rule');
    return rule;
  }

  putRule(userId: string, kind: RuleKind, rule: Omit<PushRule, 'default' | 'enabled'>, before?: string, after?: string): Promise<number> {
    return this.writer.putRule(userId, kind, rule, before, after);
  }
  deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<number> {
    return this.writer.deleteRule(userId, kind, ruleId);
  }
  setEnabled(userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<number> {
    return this.writer.setEnabled(userId, kind, ruleId, enabled);
  }
  setActions(userId: string, kind: RuleKind, ruleId: string, actions: PushAction[]): Promise<number> {
    return this.writer.setActions(userId, kind, ruleId, actions);
  }

  /**
   * The m.push_rules event when the rules changed in (from, to]. An initial
   * sync (from = 0) always gets it: clients need the defaults too.
   */
  async getUpdates(userId: string, from: number, to: number): Promise<ClientEvent | undefined> {
    if (from > 0) {
      const pos = await this.store.streamPosition(userId);
      if (pos === undefined || pos <= from || pos > to) return undefined;
    }
    return { type: 'm.push_rules', content: { global: await this.getRuleset(userId) } };
  }
}
