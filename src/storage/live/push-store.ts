/** Push rules (user rules, changes to default rules) and per-event push actions. */
import { chunks, insertMany, placeholders, type ColumnType, type Db, type Queryable } from '../db.js';
import type { DefaultRuleOverride, PushAction, PushCondition, PushRule, RuleKind } from '../../matrix/push-rules.js';

/** Column types of the push rows (PostgreSQL's arrays), in the INSERTs' column order. */
const PUSH_DEFAULT_TYPES: readonly ColumnType[] = ['text', 'bigint', 'text', 'text', 'text', 'int', 'text', 'bigint'];
const PUSH_EXCEPTION_TYPES: readonly ColumnType[] = ['text', 'text', 'bigint', 'text', 'text', 'int', 'int', 'text', 'bigint'];

export interface UserRuleRow {
  kind: RuleKind;
  rule: PushRule;
  priority: number;
}

/**
 * A notifying event's outcome for every member with the default outcome
 * (server-default rules, not mentioned): one row per event. Members whose
 * outcome differs have a PushExceptionRow instead; the sender never counts.
 */
export interface PushDefaultRow {
  eventId: string;
  roomId: string;
  streamOrdering: number;
  threadId: string;
  sender: string;
  highlight: boolean;
  actions: PushAction[];
  receivedTs: number;
}

/** One member's outcome where it differs from the event's default (notif false: suppressed for them). */
export interface PushExceptionRow {
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

export type PushRow = ({ kind: 'default' } & PushDefaultRow) | ({ kind: 'exception' } & PushExceptionRow);

/** Where unread events of a room start for a user, and its threads read further (threaded receipts). */
export interface UnreadRange {
  roomId: string;
  /** Events with a higher stream ordering count (the later of the unthreaded receipt and the user's join). */
  after: number;
  /** Per thread id: events of the thread up to this position are read. */
  threads: ReadonlyArray<readonly [string, number]>;
}

/** The push rows of a room in a range of positions (PushStore.pushRowsInRange). */
export interface RoomPushRows {
  /** False when the range held more rows than were read. */
  complete: boolean;
  defaults: Array<{ streamOrdering: number; threadId: string; sender: string; highlight: boolean }>;
  exceptions: Array<{ userId: string; streamOrdering: number; threadId: string; notif: boolean; highlight: boolean }>;
}

export interface NotificationRow {
  eventId: string;
  roomId: string;
  streamOrdering: number;
  threadId: string;
  highlight: boolean;
  actions: PushAction[];
  receivedTs: number;
}

/** `(p.room_id = ? AND p.stream_ordering > ? AND NOT (p.thread_id = ? AND p.stream_ordering <= ?) ...)` for each range. */
function rangeSql(p: string, ranges: readonly UnreadRange[], params: unknown[], userId?: string, upTo?: ReadonlyMap<string, number>): string {
  // With a user, each clause starts with it: every clause is then an index range of its own.
  return ranges
    .map((r) => {
      if (userId !== undefined) params.push(userId);
      params.push(r.roomId, r.after);
      let c = `(${userId !== undefined ? `${p}.user_id = ? AND ` : ''}${p}.room_id = ? AND ${p}.stream_ordering > ?`;
      const bound = upTo?.get(r.roomId);
      if (bound !== undefined) {
        params.push(bound);
        c += ` AND ${p}.stream_ordering <= ?`;
      }
      for (const [thread, upTo] of r.threads) {
        if (upTo <= r.after) continue;
        params.push(thread, upTo);
        c += ` AND NOT (${p}.thread_id = ? AND ${p}.stream_ordering <= ?)`;
      }
      return c + ')';
    })
    .join(' OR ');
}

function notificationFromRow(r: any): NotificationRow {
  return {
    eventId: r.event_id,
    roomId: r.room_id,
    streamOrdering: Number(r.stream_ordering),
    threadId: r.thread_id,
    highlight: !!Number(r.highlight),
    actions: JSON.parse(r.actions),
    receivedTs: Number(r.received_ts),
  };
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

  // --- push actions: one default row per notifying event, exception rows per member whose outcome differs

  /**
   * Writes push rows, in the caller's transaction (the event persister's:
   * the rows commit with their events). Multi-row INSERTs, sorted so that
   * consecutive rows land in the same index pages.
   */
  async insertPushRows(q: Queryable, rows: readonly PushRow[]): Promise<void> {
    const defaults: unknown[][] = [];
    const exceptions: unknown[][] = [];
    for (const r of rows) {
      if (r.kind === 'default') {
        defaults.push([r.roomId, r.streamOrdering, r.eventId, r.sender, r.threadId, r.highlight ? 1 : 0, JSON.stringify(r.actions), r.receivedTs]);
      } else {
        exceptions.push([r.userId, r.roomId, r.streamOrdering, r.eventId, r.threadId, r.notif ? 1 : 0, r.notif && r.highlight ? 1 : 0, JSON.stringify(r.actions), r.receivedTs]);
      }
    }
    await insertMany(
      q,
      'INSERT INTO event_push_defaults (room_id, stream_ordering, event_id, sender, thread_id, highlight, actions, received_ts)',
      PUSH_DEFAULT_TYPES,
      defaults.flat(),
      'ON CONFLICT DO NOTHING',
    );
    exceptions.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
    await insertMany(
      q,
      'INSERT INTO event_push_exceptions (user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight, actions, received_ts)',
      PUSH_EXCEPTION_TYPES,
      exceptions.flat(),
      'ON CONFLICT DO NOTHING',
    );
  }

  /**
   * For each room, the stream ordering of the join that started the user's
   * current membership span (the first join after their last leave, invite,
   * ban...; later joins are profile changes). Rooms the user is not joined to
   * are absent. Without `roomIds`: every room the user is joined to now.
   */
  async joinedSince(userId: string, roomIds?: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    // Linear in the user's membership rows of these rooms (no correlated subquery).
    const run = async (roomCond: string, roomParams: unknown[]) => {
      const rows = await this.db.query<any>(
        `SELECT rm.room_id, MIN(rm.stream_ordering) AS since FROM room_memberships rm
           JOIN (SELECT room_id, MAX(CASE WHEN membership <> 'join' THEN stream_ordering ELSE -1 END) AS out_at
                   FROM room_memberships WHERE user_id = ? AND ${roomCond} GROUP BY room_id) o ON o.room_id = rm.room_id
          WHERE rm.user_id = ? AND rm.membership = 'join' AND rm.stream_ordering > o.out_at
          GROUP BY rm.room_id`,
        [userId, ...roomParams, userId],
      );
      for (const r of rows) out.set(r.room_id, Number(r.since));
    };
    if (!roomIds) {
      await run(`room_id IN (SELECT room_id FROM current_membership WHERE user_id = ? AND membership = 'join')`, [userId]);
      return out;
    }
    for (const part of chunks([...new Set(roomIds)], 500)) await run(`room_id IN (${placeholders(part.length)})`, part);
    return out;
  }

  /**
   * Notification and highlight counts per room and thread for the user over
   * the given ranges: the default rows (not sent by the user, not replaced
   * by an exception of theirs) plus their notifying exception rows, counted
   * by the database in one query per 200 rooms. With `upTo`, only rows at
   * or below that stream ordering count (a map: per room, the rooms it
   * names; the others without bound).
   */
  async countUnread(
    userId: string,
    ranges: readonly UnreadRange[],
    upTo?: number | ReadonlyMap<string, number>,
  ): Promise<Array<{ roomId: string; threadId: string; notif: number; highlight: number }>> {
    const out: Array<{ roomId: string; threadId: string; notif: number; highlight: number }> = [];
    const all = typeof upTo === 'number' ? upTo : undefined;
    const perRoom = typeof upTo === 'number' ? undefined : upTo;
    for (const part of chunks(ranges, 200)) {
      const params: unknown[] = [];
      const dRange = rangeSql('d', part, params, undefined, perRoom);
      params.push(userId, userId);
      if (all !== undefined) params.push(all);
      const xRange = rangeSql('x', part, params, userId, perRoom);
      if (all !== undefined) params.push(all);
      const rows = await this.db.query<any>(
        `SELECT room_id, thread_id, SUM(n) AS n, SUM(h) AS h FROM (
           SELECT d.room_id, d.thread_id, 1 AS n, d.highlight AS h FROM event_push_defaults d
            WHERE (${dRange}) AND d.sender <> ?
              AND NOT EXISTS (SELECT 1 FROM event_push_exceptions e
                               WHERE e.user_id = ? AND e.room_id = d.room_id AND e.stream_ordering = d.stream_ordering)${all !== undefined ? ' AND d.stream_ordering <= ?' : ''}
           UNION ALL
           SELECT x.room_id, x.thread_id, 1 AS n, x.highlight AS h FROM event_push_exceptions x
            WHERE x.notif = 1 AND (${xRange})${all !== undefined ? ' AND x.stream_ordering <= ?' : ''}
         ) t GROUP BY room_id, thread_id`,
        params,
      );
      for (const r of rows) out.push({ roomId: r.room_id, threadId: r.thread_id, notif: Number(r.n ?? 0), highlight: Number(r.h ?? 0) });
    }
    return out;
  }

  /**
   * Every push row of a room in (after, upTo] — default rows and the
   * exception rows of every user — by position, at most `limit` of each
   * kind (`complete` false when there were more). Read once for all the
   * members of a room woken by its new events, which advance their cached
   * unread counts with them.
   */
  async pushRowsInRange(roomId: string, after: number, upTo: number, limit: number): Promise<RoomPushRows> {
    // One statement for both kinds (`user_id` is NULL on default rows): one round trip.
    const rows = await this.db.query<any>(
      `SELECT * FROM (SELECT NULL AS user_id, stream_ordering, thread_id, sender, 1 AS notif, highlight FROM event_push_defaults
          WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering LIMIT ?) AS d
       UNION ALL
       SELECT * FROM (SELECT user_id, stream_ordering, thread_id, NULL AS sender, notif, highlight FROM event_push_exceptions
          WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering LIMIT ?) AS x`,
      [roomId, after, upTo, limit + 1, roomId, after, upTo, limit + 1],
    );
    const defaults: any[] = [];
    const exceptions: any[] = [];
    for (const r of rows) (r.user_id === null || r.user_id === undefined ? defaults : exceptions).push(r);
    // Each part is in order; UNION ALL need not keep it.
    const byPos = (a: any, b: any) => Number(a.stream_ordering) - Number(b.stream_ordering);
    defaults.sort(byPos);
    exceptions.sort(byPos);
    return {
      complete: defaults.length <= limit && exceptions.length <= limit,
      defaults: defaults.map((r) => ({ streamOrdering: Number(r.stream_ordering), threadId: r.thread_id, sender: r.sender, highlight: !!Number(r.highlight) })),
      exceptions: exceptions.map((r) => ({
        userId: r.user_id,
        streamOrdering: Number(r.stream_ordering),
        threadId: r.thread_id,
        notif: !!Number(r.notif),
        highlight: !!Number(r.highlight),
      })),
    };
  }

  /**
   * The user's notifications, most recent first, before `before` (a stream
   * ordering): default rows of the rooms in `joinedSince` after the user
   * joined, and their notifying exception rows anywhere.
   */
  async listNotifications(
    userId: string,
    joinedSince: ReadonlyMap<string, number>,
    before: number | undefined,
    limit: number,
    onlyHighlight: boolean,
  ): Promise<NotificationRow[]> {
    const filters = (p: string, params: unknown[]) => {
      let f = '';
      if (before !== undefined) {
        f += ` AND ${p}.stream_ordering < ?`;
        params.push(before);
      }
      if (onlyHighlight) f += ` AND ${p}.highlight = 1`;
      return f;
    };
    const out: NotificationRow[] = [];
    const xParams: unknown[] = [userId];
    const xf = filters('x', xParams);
    xParams.push(limit);
    const rows = await this.db.query<any>(
      `SELECT x.event_id, x.room_id, x.stream_ordering, x.thread_id, x.highlight, x.actions, x.received_ts FROM event_push_exceptions x
        WHERE x.user_id = ? AND x.notif = 1${xf} ORDER BY x.stream_ordering DESC LIMIT ?`,
      xParams,
    );
    out.push(...rows.map(notificationFromRow));
    // Per room its newest `limit` rows (the primary key read backwards, stopping early), all rooms in one statement per 100.
    for (const part of chunks([...joinedSince], 100)) {
      const params: unknown[] = [];
      const perRoom = part.map(([roomId, since]) => {
        params.push(roomId, since, userId, userId);
        const f = filters('d', params);
        params.push(limit);
        return `SELECT * FROM (SELECT d.event_id, d.room_id, d.stream_ordering, d.thread_id, d.highlight, d.actions, d.received_ts FROM event_push_defaults d
          WHERE d.room_id = ? AND d.stream_ordering > ? AND d.sender <> ?
            AND NOT EXISTS (SELECT 1 FROM event_push_exceptions e
                             WHERE e.user_id = ? AND e.room_id = d.room_id AND e.stream_ordering = d.stream_ordering)${f}
          ORDER BY d.stream_ordering DESC LIMIT ?) r`;
      });
      params.push(limit);
      const rows = await this.db.query<any>(`SELECT * FROM (${perRoom.join(' UNION ALL ')}) u ORDER BY stream_ordering DESC LIMIT ?`, params);
      out.push(...rows.map(notificationFromRow));
    }
    out.sort((a, b) => b.streamOrdering - a.streamOrdering);
    return out.slice(0, limit);
  }

  /** Joined members of a room (local and remote) with their room display names. */
  async joinedMembers(roomId: string): Promise<Array<{ userId: string; displayName: string | null }>> {
    const rows = await this.db.query<{ user_id: string; display_name: string | null }>(
      `SELECT cm.user_id, rm.display_name FROM current_membership cm
         LEFT JOIN room_memberships rm ON rm.event_id = cm.event_id
        WHERE cm.room_id = ? AND cm.membership = 'join'`,
      [roomId],
    );
    return rows.map((r) => ({ userId: r.user_id, displayName: r.display_name ?? null }));
  }
}
