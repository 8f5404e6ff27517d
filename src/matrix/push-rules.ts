/**
 * Push rules (client-server spec, "Push Notifications" module): the
 * server-default rule set, merging a user's own rules with it, and evaluating
 * the rules against an event. Pure: no I/O.
 *
 * Kinds are checked in this order: override, content, room, sender,
 * underride. Within a kind, user-defined rules come before the server-default
 * ones, except `.m.rule.master` which always comes first of all.
 */

export const RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export type PushAction = string | { set_tweak: string; value?: unknown; [k: string]: unknown };

export interface PushCondition {
  kind: string;
  key?: string;
  pattern?: string;
  value?: unknown;
  is?: string;
  [k: string]: unknown;
}

/** A rule as clients see it. */
export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: PushAction[];
  conditions?: PushCondition[];
  pattern?: string;
}

export type Ruleset = Record<RuleKind, PushRule[]>;

export function isRuleKind(k: string): k is RuleKind {
  return (RULE_KINDS as readonly string[]).includes(k);
}

const SOUND_DEFAULT = { set_tweak: 'sound', value: 'default' };
const HIGHLIGHT = { set_tweak: 'highlight' };

const match = (key: string, pattern: string): PushCondition => ({ kind: 'event_match', key, pattern });

/** Placeholders replaced per user in the default rules. */
const USER_ID = '[the user\'s Matrix ID]';
const LOCALPART = '[the local part of the user\'s Matrix ID]';

/**
 * Rules that look for mentions in `content.body` (deprecated in v1.17 but
 * still relied upon by clients that do not send `m.mentions`). Per the
 * intentional-mentions rules, they do not apply to events that have an
 * `m.mentions` property.
 */
export const LEGACY_MENTION_RULES = new Set(['.m.rule.contains_display_name', '.m.rule.roomnotif', '.m.rule.contains_user_name']);

function def(rule_id: string, conditions: PushCondition[] | undefined, actions: PushAction[], enabled = true): PushRule {
  const r: PushRule = { rule_id, default: true, enabled, actions };
  if (conditions) r.conditions = conditions;
  return r;
}

/** The server-default rules, with the user's placeholders still in. */
const DEFAULT_OVERRIDE: PushRule[] = [
  def('.m.rule.master', [], [], false),
  def('.m.rule.suppress_notices', [match('content.msgtype', 'm.notice')], []),
  def(
    '.m.rule.invite_for_me',
    [match('type', 'm.room.member'), match('content.membership', 'invite'), match('state_key', USER_ID)],
    ['notify', SOUND_DEFAULT],
  ),
  def('.m.rule.member_event', [match('type', 'm.room.member')], []),
  def(
    '.m.rule.is_user_mention',
    [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: USER_ID }],
    ['notify', SOUND_DEFAULT, HIGHLIGHT],
  ),
  def('.m.rule.contains_display_name', [{ kind: 'contains_display_name' }], ['notify', SOUND_DEFAULT, HIGHLIGHT]),
  def(
    '.m.rule.is_room_mention',
    [
      { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
      { kind: 'sender_notification_permission', key: 'room' },
    ],
    ['notify', HIGHLIGHT],
  ),
  def('.m.rule.roomnotif', [match('content.body', '@room'), { kind: 'sender_notification_permission', key: 'room' }], ['notify', HIGHLIGHT]),
  def('.m.rule.tombstone', [match('type', 'm.room.tombstone'), match('state_key', '')], ['notify', HIGHLIGHT]),
  def('.m.rule.reaction', [match('type', 'm.reaction')], []),
  def('.m.rule.room.server_acl', [match('type', 'm.room.server_acl'), match('state_key', '')], []),
  def('.m.rule.suppress_edits', [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }], []),
];

const DEFAULT_CONTENT: PushRule[] = [
  { rule_id: '.m.rule.contains_user_name', default: true, enabled: true, pattern: LOCALPART, actions: ['notify', SOUND_DEFAULT, HIGHLIGHT] },
];

const DEFAULT_UNDERRIDE: PushRule[] = [
  def('.m.rule.call', [match('type', 'm.call.invite')], ['notify', { set_tweak: 'sound', value: 'ring' }]),
  def('.m.rule.encrypted_room_one_to_one', [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.encrypted')], ['notify', SOUND_DEFAULT]),
  def('.m.rule.room_one_to_one', [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.message')], ['notify', SOUND_DEFAULT]),
  def('.m.rule.message', [match('type', 'm.room.message')], ['notify']),
  def('.m.rule.encrypted', [match('type', 'm.room.encrypted')], ['notify']),
];

function localpart(userId: string): string {
  const colon = userId.indexOf(':');
  return userId.slice(1, colon < 0 ? undefined : colon);
}

function personalise(rule: PushRule, userId: string): PushRule {
  const sub = (s: string) => s.replace(USER_ID, userId).replace(LOCALPART, localpart(userId));
  const out: PushRule = structuredClone(rule);
  if (out.pattern !== undefined) out.pattern = sub(out.pattern);
  if (out.conditions) {
    for (const c of out.conditions) {
      if (typeof c.pattern === 'string') c.pattern = sub(c.pattern);
      if (typeof c.value === 'string') c.value = sub(c.value);
    }
  }
  return out;
}

/** The server-default rules of one kind for a user. */
export function defaultRules(userId: string, kind: RuleKind): PushRule[] {
  const list = kind === 'override' ? DEFAULT_OVERRIDE : kind === 'content' ? DEFAULT_CONTENT : kind === 'underride' ? DEFAULT_UNDERRIDE : [];
  return list.map((r) => personalise(r, userId));
}

export function isDefaultRuleId(ruleId: string): boolean {
  return ruleId.startsWith('.');
}

/** A change the user made to a server-default rule. */
export interface DefaultRuleOverride {
  enabled?: boolean;
  actions?: PushAction[];
}

/**
 * The user's full ruleset: their own rules (already in priority order, most
 * important first) merged with the server defaults and their changes to them.
 */
export function buildRuleset(
  userId: string,
  userRules: Record<RuleKind, PushRule[]>,
  overrides: Map<string, DefaultRuleOverride>,
): Ruleset {
  const apply = (kind: RuleKind, r: PushRule): PushRule => {
    const o = overrides.get(`${kind}/${r.rule_id}`);
    if (!o) return r;
    return { ...r, ...(o.enabled !== undefined ? { enabled: o.enabled } : {}), ...(o.actions !== undefined ? { actions: o.actions } : {}) };
  };
  const out = {} as Ruleset;
  for (const kind of RULE_KINDS) {
    const defaults = defaultRules(userId, kind).map((r) => apply(kind, r));
    const mine = userRules[kind] ?? [];
    if (kind === 'override') {
      // .m.rule.master outranks even user-defined rules.
      const master = defaults.filter((r) => r.rule_id === '.m.rule.master');
      const rest = defaults.filter((r) => r.rule_id !== '.m.rule.master');
      out[kind] = [...master, ...mine, ...rest];
    } else {
      out[kind] = [...mine, ...defaults];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Evaluation

/** What the conditions may look at besides the event. */
export interface EvalContext {
  /** The user whose rules these are. */
  userId: string;
  /** The user's display name in the room (for contains_display_name). */
  displayName?: string;
  /** Joined members of the room. */
  memberCount: number;
  /** The sender's power level. */
  senderPowerLevel: number;
  /** The power level needed for a notification key (e.g. `room` -> 50). */
  notificationLevel(key: string): number;
}

/** Splits a dot-separated property path (appendix), honouring `\.` and `\\`. */
export function splitPropertyPath(path: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '\\' && (path[i + 1] === '.' || path[i + 1] === '\\')) {
      cur += path[i + 1];
      i++;
    } else if (c === '.') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

const pathCache = new Map<string, string[]>();
function cachedPath(path: string): string[] {
  let parts = pathCache.get(path);
  if (!parts) {
    if (pathCache.size > 5000) pathCache.clear();
    parts = splitPropertyPath(path);
    pathCache.set(path, parts);
  }
  return parts;
}

/** What `lookup` answers for a path the event does not have. */
const NOT_FOUND: unique symbol = Symbol('not found');

function lookup(event: Record<string, any>, path: string): unknown {
  let v: unknown = event;
  for (const p of cachedPath(path)) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, p)) return NOT_FOUND;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The glob (`*` any run, `?` one character) as a regular-expression source. */
export function globToRegexSource(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*?';
    else if (ch === '?') out += '.';
    else out += escapeRegex(ch);
  }
  return out;
}

/**
 * Compiled regular expressions by their source text, one cache per use
 * (whole-value globs, word globs, display names): keyed by the text itself,
 * no key string is built per evaluation.
 */
type RegexCache = Map<string, RegExp>;
const wholeGlobs: RegexCache = new Map();
const wordGlobs: RegexCache = new Map();
const displayNames: RegexCache = new Map();
function cachedRegex(cache: RegexCache, key: string, make: (key: string) => RegExp): RegExp {
  let r = cache.get(key);
  if (!r) {
    if (cache.size > 5000) cache.clear();
    r = make(key);
    cache.set(key, r);
  }
  return r;
}
const wholeGlobRegex = (glob: string) => new RegExp(`^${globToRegexSource(glob)}$`, 'isu');
const wordGlobRegex = (glob: string) => new RegExp(`(?:^|[^A-Za-z0-9_])${globToRegexSource(glob)}(?:$|[^A-Za-z0-9_])`, 'isu');
const displayNameRegex = (name: string) => new RegExp(`(?:^|[^A-Za-z0-9_])${escapeRegex(name)}(?:$|[^A-Za-z0-9_])`, 'iu');

/** Whole-value glob match, case-insensitive. */
export function globMatches(glob: string, value: string): boolean {
  const re = cachedRegex(wholeGlobs, glob, wholeGlobRegex);
  return re.test(value);
}

/**
 * Glob match against a substring of `value` that starts and ends at a word
 * boundary (start/end of the value or a character outside [A-Za-z0-9_]).
 */
export function globMatchesWords(glob: string, value: string): boolean {
  const re = cachedRegex(wordGlobs, glob, wordGlobRegex);
  return re.test(value);
}

function isSimpleValue(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v));
}

/** Parses `room_member_count`'s `is` ("2", "==2", "<10", ">=3"...). */
export function memberCountMatches(is: unknown, count: number): boolean {
  if (typeof is !== 'string') return false;
  const m = /^(==|<=|>=|<|>)?\s*([0-9]+)$/.exec(is.trim());
  if (!m) return false;
  const n = Number(m[2]);
  switch (m[1] ?? '==') {
    case '==':
      return count === n;
    case '<':
      return count < n;
    case '>':
      return count > n;
    case '<=':
      return count <= n;
    case '>=':
      return count >= n;
  }
  return false;
}

export function conditionMatches(cond: PushCondition, event: Record<string, any>, ctx: EvalContext): boolean {
  switch (cond.kind) {
    case 'event_match': {
      if (typeof cond.key !== 'string' || typeof cond.pattern !== 'string') return false;
      const value = lookup(event, cond.key);
      if (typeof value !== 'string') return false;
      return cond.key === 'content.body' ? globMatchesWords(cond.pattern, value) : globMatches(cond.pattern, value);
    }
    case 'event_property_is': {
      if (typeof cond.key !== 'string' || !isSimpleValue(cond.value)) return false;
      const value = lookup(event, cond.key);
      return value !== NOT_FOUND && isSimpleValue(value) && value === cond.value;
    }
    case 'event_property_contains': {
      if (typeof cond.key !== 'string' || !isSimpleValue(cond.value)) return false;
      const value = lookup(event, cond.key);
      return Array.isArray(value) && value.some((v) => isSimpleValue(v) && v === cond.value);
    }
    case 'contains_display_name': {
      const body = event.content?.body;
      if (typeof body !== 'string' || !ctx.displayName) return false;
      // The display name as a whole word (or words), case-insensitively.
      const re = cachedRegex(displayNames, ctx.displayName, displayNameRegex);
      return re.test(body);
    }
    case 'room_member_count':
      return memberCountMatches(cond.is, ctx.memberCount);
    case 'sender_notification_permission':
      if (typeof cond.key !== 'string') return false;
      return ctx.senderPowerLevel >= ctx.notificationLevel(cond.key);
    default:
      // Unrecognised conditions never match.
      return false;
  }
}

/** Whether one rule (of the given kind) matches the event. */
export function ruleMatches(kind: RuleKind, rule: PushRule, event: Record<string, any>, ctx: EvalContext): boolean {
  if (!rule.enabled) return false;
  if (LEGACY_MENTION_RULES.has(rule.rule_id) && event.content && typeof event.content === 'object' && 'm.mentions' in event.content) {
    return false;
  }
  switch (kind) {
    case 'override':
    case 'underride':
      if (rule.conditions) for (const c of rule.conditions) if (!conditionMatches(c, event, ctx)) return false;
      return true;
    case 'content':
      return typeof rule.pattern === 'string' && conditionMatches({ kind: 'event_match', key: 'content.body', pattern: rule.pattern }, event, ctx);
    case 'room':
      return event.room_id === rule.rule_id;
    case 'sender':
      return event.sender === rule.rule_id;
  }
}

export interface EvalResult {
  rule?: { kind: RuleKind; rule_id: string };
  /** The matching rule's actions, with historical no-op actions removed. */
  actions: PushAction[];
  notify: boolean;
  highlight: boolean;
}

/** Strips the historical `dont_notify` / `coalesce` actions. */
export function cleanActions(actions: PushAction[]): PushAction[] {
  return actions.filter((a) => a !== 'dont_notify' && a !== 'coalesce');
}

/** The first matching rule's actions for the event (no match: no actions). */
export function evaluate(ruleset: Ruleset, event: Record<string, any>, ctx: EvalContext): EvalResult {
  for (const kind of RULE_KINDS) {
    for (const rule of ruleset[kind]) {
      if (ruleMatches(kind, rule, event, ctx)) return resultOf(kind, rule);
    }
  }
  return { actions: [], notify: false, highlight: false };
}

/**
 * The default rules whose outcome depends on whose rules they are (their
 * user id, localpart or display name); every other default rule matches or
 * not alike for all the room's members, given the same event and room.
 */
const USER_DEPENDENT_DEFAULTS = new Set(['.m.rule.invite_for_me', '.m.rule.is_user_mention', '.m.rule.contains_display_name', '.m.rule.contains_user_name']);

/** Printable ASCII without glob characters (a literal: substring containment is exact). */
const ASCII_LITERAL = /^[\x20-\x29\x2b-\x3e\x40-\x7e]+$/;
/** Names (display names, localparts) by text: their lower case when an ASCII literal, else null. */
const literals = new Map<string, string | null>();
function literalLower(word: string): string | null {
  let lower = literals.get(word);
  if (lower === undefined) {
    if (literals.size > 20_000) literals.clear();
    lower = ASCII_LITERAL.test(word) ? word.toLowerCase() : null;
    literals.set(word, lower);
  }
  return lower;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

let placeholderRuleset: Ruleset | undefined;
/** The server-default ruleset (of a placeholder user: only its layout and user-independent rules are used). */
function placeholderDefaults(): Ruleset {
  if (!placeholderRuleset) {
    const none = {} as Record<RuleKind, PushRule[]>;
    for (const k of RULE_KINDS) none[k] = [];
    placeholderRuleset = buildRuleset('@\u0000:\u0000', none, new Map());
  }
  return placeholderRuleset;
}

/** Whether two outcomes are the same for unread counts and notifications (notify, highlight, actions). */
export function sameOutcome(a: EvalResult, b: EvalResult): boolean {
  if (a === b) return true;
  if (a.notify !== b.notify) return false;
  if (!a.notify) return true;
  return a.highlight === b.highlight && JSON.stringify(a.actions) === JSON.stringify(b.actions);
}

/**
 * Outcomes by rule (a rule object belongs to one kind of one ruleset, and a
 * changed rule is a new object): the outcome of the same rule is built once.
 * Shared, so frozen: nothing may change a result.
 */
const results = new WeakMap<PushRule, EvalResult>();

function resultOf(kind: RuleKind, rule: PushRule): EvalResult {
  let r = results.get(rule);
  if (r && r.rule!.kind === kind) return r;
  const actions = Object.freeze(cleanActions(rule.actions)) as PushAction[];
  const notify = actions.includes('notify');
  const highlight = actions.some((a) => typeof a === 'object' && a.set_tweak === 'highlight' && a.value !== false);
  r = Object.freeze({ rule: Object.freeze({ kind, rule_id: rule.rule_id }), actions, notify, highlight });
  results.set(rule, r);
  return r;
}

/** The default rules that look for a member's names in `content.body`. */
const BODY_NAME_RULES = new Set(['.m.rule.contains_display_name', '.m.rule.contains_user_name']);

/**
 * What the body rules of a member whose ruleset is exactly the server
 * defaults look for (`memberBodyWords`): each word a lower-cased ASCII
 * literal; null when the name is not one (the member is then evaluated in
 * full); undefined when the rule cannot match at all (no display name, no
 * enabled rule with a pattern).
 */
export interface MemberBodyWords {
  displayName: string | null | undefined;
  userName: string | null | undefined;
}

/** The words of `MemberBodyWords` for a member with the default ruleset `ruleset` and this room display name. */
export function memberBodyWords(ruleset: Ruleset, displayName: string | null | undefined): MemberBodyWords {
  const rule = ruleset.content.find((r) => r.rule_id === '.m.rule.contains_user_name');
  return {
    displayName: displayName ? literalLower(displayName) : undefined,
    userName: rule?.enabled && typeof rule.pattern === 'string' ? literalLower(rule.pattern) : undefined,
  };
}

/** Whether code unit `c` is a word character of the body rules' boundaries ([A-Za-z0-9_]). */
function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || (c >= 0x41 && c <= 0x5a);
}

/** The leading run of word characters of `s` ('' when it starts with another character). */
function leadingWord(s: string): string {
  let i = 0;
  while (i < s.length && isWordChar(s.charCodeAt(i))) i++;
  return s.slice(0, i);
}

/** The distinct maximal runs of word characters of `text`. */
function wordsOf(text: string): Set<string> {
  const out = new Set<string>();
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && isWordChar(text.charCodeAt(i))) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      out.add(text.slice(start, i));
      start = -1;
    }
  }
  return out;
}

/**
 * Members with the default rules indexed by what their body rules look for,
 * for `DefaultRulesEvaluator.membersThatMayDiffer`. A body rule matches a
 * name only between word boundaries (start or end of the body, or a
 * character outside [A-Za-z0-9_]); so where a name that starts with a word
 * character occurs as the rule wants it, a word of the body starts, and that
 * word is the name's leading word. Members are found through the words of a
 * body instead of one by one; those with a name that is no ASCII literal, or
 * that starts with another character, are looked at for every body.
 */
export class MemberWordIndex<M extends { words: MemberBodyWords }> {
  private readonly byWord = new Map<string, number[]>();
  /** Indices of the members looked at for every body. */
  private readonly always: number[] = [];

  constructor(readonly members: readonly M[]) {
    members.forEach((m, i) => {
      const leading: string[] = [];
      for (const w of [m.words.displayName, m.words.userName]) {
        if (w === undefined) continue;
        const lw = w === null ? '' : leadingWord(w);
        if (lw === '') {
          this.always.push(i);
          return;
        }
        if (!leading.includes(lw)) leading.push(lw);
      }
      for (const lw of leading) {
        const list = this.byWord.get(lw);
        if (list) list.push(i);
        else this.byWord.set(lw, [i]);
      }
    });
  }

  /** Indices, ascending, of the members a body with these (lower-case) words may name. */
  candidates(bodyWords: Iterable<string>): number[] {
    let out: number[] | undefined;
    for (const w of bodyWords) {
      const list = this.byWord.get(w);
      if (list) (out ??= [...this.always]).push(...list);
    }
    if (!out) return this.always;
    out.sort((a, b) => a - b);
    return out.filter((v, i) => i === 0 || out[i - 1] !== v);
  }
}

/**
 * Evaluates one event for many recipients whose rulesets are exactly the
 * server defaults (no rules of their own, no changes to the defaults), as
 * most users' are: the user-independent rules are matched once per event and
 * remembered, only the few user-dependent ones (mentions of the user, their
 * display name or localpart, invites to them) run per recipient. Gives the
 * same result as `evaluate` for such rulesets. `memberCount`,
 * `senderPowerLevel` and `notificationLevel` must be the same for every
 * recipient (they are per room and event).
 */
export class DefaultRulesEvaluator {
  private shared: Map<string, EvalResult | null> | undefined;
  private plan?: {
    outcome: EvalResult;
    candidates: Array<{ kind: RuleKind; index: number }>;
    /** Whether the only candidates are the body rules (display name, user name). */
    bodyRulesOnly: boolean;
    asciiBodyLower?: string;
    /** The words of `asciiBodyLower` (wordsOf), made when first asked for. */
    bodyWords?: Set<string>;
  };

  constructor(private readonly event: Record<string, any>) {}

  /**
   * The outcome for a member whose rules are the server defaults and whom no
   * user-dependent rule matches (not mentioned, not invited): the same for
   * every such member of the room. `ctx` gives the room's figures (member
   * count, sender and notification power levels); its user fields are
   * ignored.
   */
  defaultOutcome(ctx: EvalContext): EvalResult {
    return this.planFor(ctx).outcome;
  }

  /**
   * `evaluate` for a member whose ruleset is exactly the server defaults,
   * fast: only the user-dependent rules that come before the default
   * outcome's rule (and that this event could match at all) run. Returns
   * the very `defaultOutcome` object when none of them matches.
   */
  evaluateDefaultMember(ruleset: Ruleset, ctx: EvalContext): EvalResult {
    const plan = this.planFor(ctx);
    for (const { kind, index } of plan.candidates) {
      const rule = ruleset[kind][index];
      if (!rule) continue;
      // The body rules need the name in the body: a plain substring test
      // rules most members out before the regular expression runs.
      if (plan.asciiBodyLower !== undefined) {
        const word = rule.rule_id === '.m.rule.contains_display_name' ? ctx.displayName : rule.rule_id === '.m.rule.contains_user_name' ? rule.pattern : undefined;
        if (word !== undefined) {
          const lower = literalLower(word);
          if (lower !== null && !plan.asciiBodyLower.includes(lower)) continue;
        }
      }
      if (ruleMatches(kind, rule, this.event, ctx)) return resultOf(kind, rule);
    }
    return plan.outcome;
  }

  /**
   * Whether `evaluateDefaultMember` may give a member with the default rules
   * anything but the default outcome, judged from the words its body rules
   * look for alone (`memberBodyWords`): false when no user-dependent rule
   * can match this event, or when only the body rules can and the (ASCII)
   * body contains neither word. Such a member need not be evaluated.
   */
  mayDiffer(ctx: EvalContext, words: MemberBodyWords): boolean {
    const plan = this.planFor(ctx);
    if (!plan.candidates.length) return false;
    const body = plan.asciiBodyLower;
    if (!plan.bodyRulesOnly || body === undefined) return true;
    const { displayName, userName } = words;
    return (displayName !== undefined && (displayName === null || body.includes(displayName))) ||
      (userName !== undefined && (userName === null || body.includes(userName)));
  }

  /**
   * The members of `index` whose body rules can match, in their order: a
   * subset of those for whom `mayDiffer` holds (its substring test also takes
   * a name found inside a word). When
   * only the body rules can match (the event mentions nobody, its body is
   * ASCII), they are found through the words of the body (MemberWordIndex)
   * rather than by asking `mayDiffer` of every member.
   */
  membersThatMayDiffer<M extends { words: MemberBodyWords }>(ctx: EvalContext, index: MemberWordIndex<M>): M[] {
    const plan = this.planFor(ctx);
    if (!plan.candidates.length) return [];
    const { members } = index;
    if (!plan.bodyRulesOnly || plan.asciiBodyLower === undefined) return members.filter((m) => this.mayDiffer(ctx, m.words));
    const out: M[] = [];
    for (const i of index.candidates((plan.bodyWords ??= wordsOf(plan.asciiBodyLower)))) {
      if (this.mayDiffer(ctx, members[i]!.words)) out.push(members[i]!);
    }
    return out;
  }

  private planFor(ctx: EvalContext): NonNullable<DefaultRulesEvaluator['plan']> {
    if (this.plan) return this.plan;
    const ruleset = placeholderDefaults();
    const content = this.event.content && typeof this.event.content === 'object' ? this.event.content : {};
    const hasMentions = 'm.mentions' in content;
    const userIds = hasMentions ? content['m.mentions']?.user_ids : undefined;
    // Whether a user-dependent rule can match this event for some member (cheap shape checks).
    const possible = (ruleId: string): boolean => {
      switch (ruleId) {
        case '.m.rule.invite_for_me':
          return this.event.type === 'm.room.member' && content.membership === 'invite';
        case '.m.rule.is_user_mention':
          return Array.isArray(userIds) && userIds.length > 0;
        case '.m.rule.contains_display_name':
        case '.m.rule.contains_user_name':
          return !hasMentions && typeof content.body === 'string';
      }
      return true;
    };
    const candidates: Array<{ kind: RuleKind; index: number }> = [];
    let outcome: EvalResult | undefined;
    outer: for (const kind of RULE_KINDS) {
      const rules = ruleset[kind];
      for (let index = 0; index < rules.length; index++) {
        const rule = rules[index]!;
        if (USER_DEPENDENT_DEFAULTS.has(rule.rule_id)) {
          if (rule.enabled && possible(rule.rule_id)) candidates.push({ kind, index });
          continue;
        }
        if (ruleMatches(kind, rule, this.event, ctx)) {
          outcome = resultOf(kind, rule);
          break outer;
        }
      }
    }
    const bodyRulesOnly = candidates.every(({ kind, index }) => BODY_NAME_RULES.has(ruleset[kind][index]!.rule_id));
    this.plan = { outcome: outcome ?? { actions: [], notify: false, highlight: false }, candidates, bodyRulesOnly };
    // An ASCII body matches an ASCII name case-insensitively only where it contains it in lower case.
    if (typeof content.body === 'string' && isAscii(content.body)) this.plan.asciiBodyLower = content.body.toLowerCase();
    return this.plan;
  }

  evaluate(ruleset: Ruleset, ctx: EvalContext): EvalResult {
    for (const kind of RULE_KINDS) {
      for (const rule of ruleset[kind]) {
        if (USER_DEPENDENT_DEFAULTS.has(rule.rule_id)) {
          if (ruleMatches(kind, rule, this.event, ctx)) return resultOf(kind, rule);
          continue;
        }
        const key = `${kind}/${rule.rule_id}`;
        const shared = (this.shared ??= new Map());
        let r = shared.get(key);
        if (r === undefined) {
          r = ruleMatches(kind, rule, this.event, ctx) ? resultOf(kind, rule) : null;
          shared.set(key, r);
        }
        if (r) return r;
      }
    }
    return { actions: [], notify: false, highlight: false };
  }
}

// ---------------------------------------------------------------------------
// Validation of client-supplied rules

/** Returns an error message, or undefined when the actions are valid. */
export function validateActions(actions: unknown): string | undefined {
  if (!Array.isArray(actions)) return "'actions' must be a list";
  for (const a of actions) {
    if (typeof a === 'string') {
      if (!['notify', 'dont_notify', 'coalesce'].includes(a)) return `unknown action '${a}'`;
    } else if (a && typeof a === 'object' && !Array.isArray(a)) {
      if (typeof (a as any).set_tweak !== 'string') return 'an action object needs a string set_tweak';
    } else {
      return 'each action must be a string or an object';
    }
  }
  return undefined;
}

export function validateConditions(conditions: unknown): string | undefined {
  if (!Array.isArray(conditions)) return "'conditions' must be a list";
  for (const c of conditions) {
    if (!c || typeof c !== 'object' || Array.isArray(c)) return 'each condition must be an object';
    if (typeof (c as any).kind !== 'string') return "each condition needs a string 'kind'";
    const k = (c as any).kind;
    if (k === 'event_match' && (typeof (c as any).key !== 'string' || typeof (c as any).pattern !== 'string')) {
      return 'event_match needs string key and pattern';
    }
    if ((k === 'event_property_is' || k === 'event_property_contains') && typeof (c as any).key !== 'string') {
      return `${k} needs a string key`;
    }
    if (k === 'room_member_count' && typeof (c as any).is !== 'string') return "room_member_count needs a string 'is'";
  }
  return undefined;
}
