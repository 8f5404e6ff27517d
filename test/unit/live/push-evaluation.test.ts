/**
 * Push evaluation of a batch (PushService.prepareBatch) against per-user
 * evaluation: whatever the service shares between members (the default
 * outcome, the members found through the words of the body), every member
 * must end up with the outcome `evaluate` gives them with their own rules.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildRuleset, evaluate, RULE_KINDS, type EvalResult, type PushRule, type RuleKind } from '../../../src/matrix/push-rules.js';
import type { AccountDataService } from '../../../src/services/account-data/account-data-service.js';
import { PushRulesService } from '../../../src/services/push/push-rules-service.js';
import { PushService } from '../../../src/services/push/push-service.js';
import type { ReceiptsService } from '../../../src/services/receipts/receipts-service.js';
import type { PushRow, PushStore } from '../../../src/storage/live/push-store.js';
import type { RoomQueries } from '../../../src/storage/live/room-queries.js';

const HS = 'example.org';
const ROOM = '!r:example.org';
const u = (name: string) => `@${name}:${HS}`;

/** Local members and their room display names; a remote member counts for the member count only. */
const MEMBERS: Array<[string, string | null]> = [
  [u('alice'), 'Alice Liddell'],
  [u('bob'), 'Bob'],
  [u('carol'), null],
  [u('dave'), 'Dave'],
  [u('zoe'), 'Zoë'],
  [u('weird'), '@weird'],
  [u('bang'), 'bob!'],
  [u('x_1'), 'x_1'],
  [u('sam'), 'Sam'],
  [u('k9'), '9 lives'],
  [u('cake'), 'Cake Fan'], // own content rule
  [u('quiet'), 'Quiet'], // display-name rule disabled
  [u('ignorer'), 'Ignorer'], // ignores alice
  ['@remote:other.org', 'Remote'],
];
const OWN_RULES: Record<string, Array<{ kind: RuleKind; rule: PushRule }>> = {
  [u('cake')]: [{ kind: 'content', rule: { rule_id: 'cake', default: false, enabled: true, pattern: 'cake', actions: ['notify', { set_tweak: 'highlight' }] } }],
};
const OVERRIDES: Record<string, Map<string, { enabled?: boolean }>> = {
  [u('quiet')]: new Map([['override/.m.rule.contains_display_name', { enabled: false }]]),
};
const IGNORED: Record<string, Set<string>> = { [u('ignorer')]: new Set([u('alice')]) };
const POWER_LEVELS = { users: { [u('alice')]: 100 } };

function service() {
  const store = {
    joinedMembers: async () => MEMBERS.map(([userId, displayName]) => ({ userId, displayName })),
    userRules: async (userId: string) => OWN_RULES[userId] ?? [],
    defaultOverrides: async (userId: string) => OVERRIDES[userId] ?? new Map(),
    insertPushRows: async () => {},
  } as unknown as PushStore;
  const rooms = {
    currentState: async (_roomId: string, type: string) =>
      type === 'm.room.power_levels' ? { content: POWER_LEVELS, sender: u('alice') } : type === 'm.room.create' ? { content: { room_version: '10' }, sender: u('alice') } : undefined,
    roomVersion: async () => '10',
    getEvent: async () => undefined,
  } as unknown as RoomQueries;
  const accountData = {
    ignoredVersion: 0,
    cachedIgnoredUsers: (userId: string) => IGNORED[userId] ?? new Set<string>(),
    getIgnoredUsers: async (userId: string) => IGNORED[userId] ?? new Set<string>(),
  } as unknown as AccountDataService;
  return new PushService(store, rooms, new PushRulesService(store), {} as ReceiptsService, accountData, HS, pino({ level: 'silent' }));
}

/** What `evaluate` gives `userId` with their own rules (nothing for a member who ignores the sender). */
function expected(userId: string, displayName: string | null, event: Record<string, any>): EvalResult {
  if (IGNORED[userId]?.has(event.sender)) return { actions: [], notify: false, highlight: false };
  const own = {} as Record<RuleKind, PushRule[]>;
  for (const k of RULE_KINDS) own[k] = (OWN_RULES[userId] ?? []).filter((r) => r.kind === k).map((r) => r.rule);
  const ruleset = buildRuleset(userId, own, OVERRIDES[userId] ?? new Map());
  return evaluate(ruleset, event, {
    userId,
    ...(displayName !== null ? { displayName } : {}),
    memberCount: MEMBERS.length,
    senderPowerLevel: event.sender === u('alice') ? 100 : 0,
    notificationLevel: () => 50,
  });
}

/** A member's outcome from the rows: their exception, else the default row (no row: nothing). */
function outcomeOf(rows: PushRow[], userId: string): { notify: boolean; highlight?: boolean; actions?: unknown } {
  const x = rows.find((r) => r.kind === 'exception' && r.userId === userId);
  if (x && x.kind === 'exception') return x.notif ? { notify: true, highlight: x.highlight, actions: x.actions } : { notify: false };
  const d = rows.find((r) => r.kind === 'default');
  return d && d.kind === 'default' ? { notify: true, highlight: d.highlight, actions: d.actions } : { notify: false };
}

const BODIES = [
  'hello everyone',
  'hi alice, how are you',
  'HI ALICE LIDDELL!',
  'ping Bob',
  'bob! are you there',
  'Davenport is not dave-less',
  'dave? DAVE',
  'zoë here',
  'hey @weird, and @WEIRD',
  'x_1 and x_10',
  '9 lives left',
  'cake time',
  'a quiet evening',
  'ignorer, alice says hi',
  '@room look',
  'sam',
  'Remote person',
  'carol: lunch?', // carol by localpart only (no display name)
  'bang bang', // bang by localpart (display name "bob!")
];

describe('push evaluation of a batch agrees with per-user evaluation', () => {
  for (const sender of [u('alice'), u('bob')]) {
    it(`every local member's outcome, sender ${sender}`, async () => {
      const svc = service();
      const events: Array<Record<string, any>> = BODIES.map((body, i) => ({ event_id: `$m${i}`, room_id: ROOM, sender, type: 'm.room.message', content: { msgtype: 'm.text', body } }));
      events.push(
        { event_id: '$mention', room_id: ROOM, sender, type: 'm.room.message', content: { msgtype: 'm.text', body: 'dave', 'm.mentions': { user_ids: [u('sam')] } } },
        { event_id: '$notice', room_id: ROOM, sender, type: 'm.room.message', content: { msgtype: 'm.notice', body: 'hi alice' } },
        { event_id: '$enc', room_id: ROOM, sender, type: 'm.room.encrypted', content: { ciphertext: 'x' } },
      );
      let checked = 0;
      for (const [i, event] of events.entries()) {
        const batch = await svc.prepareBatch(ROOM, [{ event: event as any, streamOrdering: i + 1 }]);
        const rows = (batch?.[0]?.rows ?? []) as PushRow[];
        // Never a row of its own for the sender; exceptions in the members' order.
        expect(rows.some((r) => r.kind === 'exception' && r.userId === sender)).toBe(false);
        const order = rows.filter((r) => r.kind === 'exception').map((r) => MEMBERS.findIndex(([id]) => id === r.userId));
        expect(order).toEqual([...order].sort((a, b) => a - b));
        for (const [userId, displayName] of MEMBERS) {
          if (userId === sender || !userId.endsWith(':' + HS)) continue;
          const want = expected(userId, displayName, event);
          const got = outcomeOf(rows, userId);
          const where = `${event.content.body ?? event.type} for ${userId}`;
          expect(got.notify, where).toBe(want.notify);
          if (want.notify) {
            expect(got.highlight, where).toBe(want.highlight);
            expect(got.actions, where).toEqual(want.actions);
          }
          checked++;
        }
      }
      expect(checked).toBe(events.length * 12);
    });
  }
});
