/** Push rules (user rules, changes to default rules) and per-event push actions. */
import { placeholders, type Db, type Queryable } from '../db.js';
import type { DefaultRuleOverride, PushAction, PushCondition, PushRule, RuleKind } from '../../matrix/push-rules.js';

export interface UserRuleRow {
  kind: RuleKind;
  rule: PushRule;
  priority: number;
}

export interface PushActionRow {
  userId: string;
  eventId: string;
  roomId: string;
  streamOrdering: number;
  threadId: string;
  notif: boolean;
  highlight: boolean;
  actions: PushAction[];
  receivedTs: number;
}

export class PushStore {
  constructor(private readonly db: Db) {}

  /** The user's own rules, most important first within each kind. */
  async userRules(userId: string, q: Queryable = this.db): Promise<UserRuleRow[]> {
    const rows = await q.query<any>('SELECT * FROM push_rules WHERE user_id = ? ORDER BY kind, priority DESC', [userId]);
    return rows.map((r) => {
      const rule: PushRule = { rule_id: r.rule_id, default: false, enabled: !!Number(r.enabled), actions: JSON.parse(r.actions) };
      if (r.conditions != null) rule.conditions = JSON.parse(r.conditions) as PushCondition[];
      if (r.pattern != null) rule.pattern = r.pattern;
      return { kind: r.kind, rule, priority: Number(r.priority) };
    });
  }

  async defaultOverrides(userId: string): Promise<Map<string, DefaultRuleOverride>> {
    const rows = await this.db.query<any>('SELECT * FROM push_rules_defaults WHERE user_id = ?', [userId]);
    const out = new Map<string, DefaultRuleOverride>();
    for (const r of rows) {
      const o: DefaultRuleOverride = {};
      if (r.enabled != null) o.enabled = !!Number(r.enabled);
      if (r.actions != null) o.actions = JSON.parse(r.actions);
      out.set(`${r.kind}/${r.rule_id}`, o);
    }
    return out;
  }

  async putUserRule(q: Queryable, userId: string, kind: RuleKind, rule: PushRule, priority: number): Promise<void> {
    await q.execute(
      `INSERT INTO push_rules (user_id, kind, rule_id, priority, conditions, pattern, actions, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET priority = excluded.priority, conditions = excluded.conditions,
         pattern = excluded.pattern, actions = excluded.actions, enabled = excluded.enabled`,
      [
        userId,
        kind,
        rule.rule_id,
        priority,
        rule.conditions ? JSON.stringify(rule.conditions) : null,
        rule.pattern ?? null,
        JSON.stringify(rule.actions),
        rule.enabled ? 1 : 0,
      ],
    );
  }

  async deleteUserRule(q: Queryable, userId: string, kind: RuleKind, ruleId: string): Promise<boolean> {
    return (await q.execute('DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?', [userId, kind, ruleId])) > 0;
  }

  async setUserRuleEnabled(q: Queryable, userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<boolean> {
    return (await q.execute('UPDATE push_rules SET enabled = ? WHERE user_id = ? AND kind = ? AND rule_id = ?', [enabled ? 1 : 0, userId, kind, ruleId])) > 0;
  }

  async setUserRuleActions(q: Queryable, userId: string, kind: RuleKind, ruleId: string, actions: PushAction[]): Promise<boolean> {
    return (await q.execute('UPDATE push_rules SET actions = ? WHERE user_id = ? AND kind = ? AND rule_id = ?', [JSON.stringify(actions), userId, kind, ruleId])) > 0;
  }

  async setDefaultOverride(q: Queryable, userId: string, kind: RuleKind, ruleId: string, change: DefaultRuleOverride): Promise<void> {
    await q.execute(
      `INSERT INTO push_rules_defaults (user_id, kind, rule_id, enabled, actions) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET
         enabled = COALESCE(excluded.enabled, push_rules_defaults.enabled),
         actions = COALESCE(excluded.actions, push_rules_defaults.actions)`,
      [userId, kind, ruleId, change.enabled === undefined ? null : change.enabled ? 1 : 0, change.actions ? JSON.stringify(change.actions) : null],
    );
  }

  async bumpStream(q: Queryable, userId: string, streamId: number): Promise<void> {
    await q.execute(
      `INSERT INTO push_rules_stream (user_id, stream_id) VALUES (?, ?)
       ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id`,
      [userId, streamId],
    );
  }

  async streamPosition(userId: string): Promise<number | undefined> {
    const r = await this.db.queryOne<{ stream_id: number | string }>('SELECT stream_id FROM push_rules_stream WHERE user_id = ?', [userId]);
    return r ? Number(r.stream_id) : undefined;
  }

  // --- push actions

  /**
   * Stores push actions; several chunks go into one transaction (one durable
   * commit), or into the caller's transaction when `q` is given.
   */
  async insertActions(rows: PushActionRow[], q?: Queryable): Promise<void> {
    if (!rows.length) return;
    if (!q) {
      await this.db.transaction((tx) => this.insertActions(rows, tx));
      return;
    }
    for (let i = 0; i < rows.length; i += 100) {
      const chunk = rows.slice(i, i + 100);
      const params: unknown[] = [];
      for (const r of chunk) {
        params.push(r.userId, r.eventId, r.roomId, r.streamOrdering, r.threadId, r.notif ? 1 : 0, r.highlight ? 1 : 0, JSON.stringify(r.actions), r.receivedTs);
      }
      await q.execute(
        `INSERT INTO event_push_actions (user_id, event_id, room_id, stream_ordering, thread_id, notif, highlight, actions, received_ts)
         VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (user_id, event_id) DO NOTHING`,
        params,
      );
    }
  }

  /** Actions in the rooms after a stream ordering (per-thread thresholds applied by the caller). */
  async actionsAfter(userId: string, roomIds: string[], after: number): Promise<Array<{ roomId: string; threadId: string; streamOrdering: number; notif: boolean; highlight: boolean }>> {
    const out: Array<{ roomId: string; threadId: string; streamOrdering: number; notif: boolean; highlight: boolean }> = [];
    for (let i = 0; i < roomIds.length; i += 500) {
      const chunk = roomIds.slice(i, i + 500);
      const rows = await this.db.query<any>(
        `SELECT room_id, thread_id, stream_ordering, notif, highlight FROM event_push_actions
          WHERE user_id = ? AND room_id IN (${placeholders(chunk.length)}) AND stream_ordering > ?`,
        [userId, ...chunk, after],
      );
      for (const r of rows) {
        out.push({ roomId: r.room_id, threadId: r.thread_id, streamOrdering: Number(r.stream_ordering), notif: !!Number(r.notif), highlight: !!Number(r.highlight) });
      }
    }
    return out;
  }

  /**
   * Actions of several rooms, each after its own stream ordering, in one
   * query per 200 rooms (no query per room on /sync).
   */
  async actionsAfterPerRoom(userId: string, after: ReadonlyMap<string, number>): Promise<Array<{ roomId: string; threadId: string; streamOrdering: number; notif: boolean; highlight: boolean }>> {
    const out: Array<{ roomId: string; threadId: string; streamOrdering: number; notif: boolean; highlight: boolean }> = [];
    const entries = [...after];
    for (let i = 0; i < entries.length; i += 200) {
      const chunk = entries.slice(i, i + 200);
      const rows = await this.db.query<any>(
        `SELECT room_id, thread_id, stream_ordering, notif, highlight FROM event_push_actions
          WHERE user_id = ? AND (${chunk.map(() => '(room_id = ? AND stream_ordering > ?)').join(' OR ')})`,
        [userId, ...chunk.flat()],
      );
      for (const r of rows) {
        out.push({ roomId: r.room_id, threadId: r.thread_id, streamOrdering: Number(r.stream_ordering), notif: !!Number(r.notif), highlight: !!Number(r.highlight) });
      }
    }
    return out;
  }

  /**
   * Notification and highlight counts per room and thread, each room after
   * its own stream ordering: the same rows as actionsAfterPerRoom, counted
   * in the database (no row per unread event reaches JavaScript).
   */
  async countsAfterPerRoom(userId: string, after: ReadonlyMap<string, number>): Promise<Array<{ roomId: string; threadId: string; notif: number; highlight: number }>> {
    const out: Array<{ roomId: string; threadId: string; notif: number; highlight: number }> = [];
    const entries = [...after];
    for (let i = 0; i < entries.length; i += 200) {
      const chunk = entries.slice(i, i + 200);
      const rows = await this.db.query<any>(
        `SELECT room_id, thread_id, SUM(notif) AS n, SUM(highlight) AS h FROM event_push_actions
          WHERE user_id = ? AND (${chunk.map(() => '(room_id = ? AND stream_ordering > ?)').join(' OR ')})
          GROUP BY room_id, thread_id`,
        [userId, ...chunk.flat()],
      );
      for (const r of rows) out.push({ roomId: r.room_id, threadId: r.thread_id, notif: Number(r.n ?? 0), highlight: Number(r.h ?? 0) });
    }
    return out;
  }

  /** Most recent first, before `before` (a stream ordering), for GET /notifications. */
  async listNotifications(userId: string, before: number | undefined, limit: number, onlyHighlight: boolean): Promise<PushActionRow[]> {
    const rows = await this.db.query<any>(
      `SELECT * FROM event_push_actions WHERE user_id = ?${before !== undefined ? ' AND stream_ordering < ?' : ''}${onlyHighlight ? ' AND highlight = 1' : ''}
        ORDER BY stream_ordering DESC LIMIT ?`,
      [userId, ...(before !== undefined ? [before] : []), limit],
    );
    return rows.map((r) => ({
      userId: r.user_id,
      eventId: r.event_id,
      roomId: r.room_id,
      streamOrdering: Number(r.stream_ordering),
      threadId: r.thread_id,
      notif: !!Number(r.notif),
      highlight: !!Number(r.highlight),
      actions: JSON.parse(r.actions),
      receivedTs: Number(r.received_ts),
    }));
  }
}
