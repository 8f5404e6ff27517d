/**
 * Push evaluation when events are persisted, unread counts for /sync and
 * GET /notifications.
 *
 * For every new event, the push rules of each local joined member (except
 * the sender, and those who ignore the sender) are evaluated; notifying
 * results are stored in event_push_actions with the event's thread. Unread
 * counts are the stored actions after the user's latest read receipt
 * (m.read or m.read.private, whichever is further), per thread when the
 * user sent threaded receipts.
 */
import type { Logger } from 'pino';
import { DefaultRulesEvaluator, evaluate, type EvalContext } from '../../matrix/push-rules.js';
import { notificationPowerLevel, userPowerLevel } from '../../matrix/power-levels.js';
import { getRoomVersion } from '../../matrix/room-versions.js';
import { stateKey, type RoomEvent, type StateMap } from '../../matrix/types.js';
import type { PushActionRow, PushStore } from '../../storage/live/push-store.js';
import type { JoinedMember, RoomQueries } from '../../storage/live/room-queries.js';
import type { PushSource, UnreadCounts } from '../../streams/sync-sources.js';
import type { AccountDataService } from '../account-data/account-data-service.js';
import type { ReceiptsService } from '../receipts/receipts-service.js';
import type { PushRulesService } from './push-rules-service.js';

/** What the event persister hands over after commit. */
export interface PersistedEventLike {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  content: Record<string, any>;
  state_key?: string;
  origin_server_ts?: number;
  streamOrdering?: number;
  [k: string]: unknown;
}

interface RoomPushInfo {
  members: JoinedMember[];
  joinedCount: number;
  state: StateMap;
  roomVersion?: string;
}

const STATE_TYPES_THAT_MATTER = new Set(['m.room.member', 'm.room.power_levels', 'm.room.create']);

export class PushService implements PushSource {
  /** Per-room member list and power levels, dropped when those change. */
  private readonly roomCache = new Map<string, RoomPushInfo>();
  /** Push action rows waiting for the next coalesced write. */
  private pendingActions: Array<{ rows: PushActionRow[]; resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(
    private readonly store: PushStore,
    private readonly rooms: RoomQueries,
    private readonly rules: PushRulesService,
    private readonly receipts: ReceiptsService,
    private readonly accountData: AccountDataService,
    private readonly serverName: string,
    private readonly logger: Logger,
  ) {}

  private async roomInfo(roomId: string): Promise<RoomPushInfo> {
    const cached = this.roomCache.get(roomId);
    if (cached) return cached;
    const [{ members, joinedCount }, pl, create, roomVersion] = await Promise.all([
      this.rooms.joinedLocalMembers(roomId, this.serverName),
      this.rooms.currentState(roomId, 'm.room.power_levels'),
      this.rooms.currentState(roomId, 'm.room.create'),
      this.rooms.roomVersion(roomId),
    ]);
    const state: StateMap = new Map();
    if (pl) state.set(stateKey('m.room.power_levels', ''), { type: 'm.room.power_levels', state_key: '', content: pl.content, sender: pl.sender } as RoomEvent);
    if (create) state.set(stateKey('m.room.create', ''), { type: 'm.room.create', state_key: '', content: create.content, sender: create.sender } as RoomEvent);
    const info: RoomPushInfo = { members, joinedCount, state, roomVersion };
    if (this.roomCache.size > 5000) this.roomCache.clear();
    this.roomCache.set(roomId, info);
    return info;
  }

  /** The thread an event belongs to: the root of an m.thread relation (one hop further at most), else "main". */
  private async threadOf(event: PersistedEventLike): Promise<string> {
    const rel = event.content?.['m.relates_to'];
    if (!rel || typeof rel !== 'object' || typeof rel.event_id !== 'string') return 'main';
    if (rel.rel_type === 'm.thread') return rel.event_id;
    // e.g. a reaction to or an edit of a threaded message.
    const parent = await this.rooms.getEvent(rel.event_id);
    if (parent?.relType === 'm.thread' && parent.relatesToId) return parent.relatesToId;
    return 'main';
  }

  /** Called by the event persister after commit (before the notifier wakes /sync). */
  async onEventPersisted(event: PersistedEventLike, streamOrdering?: number): Promise<void> {
    try {
      const ordering = streamOrdering ?? event.streamOrdering;
      if (ordering === undefined || !event.room_id) return;
      if (event.state_key !== undefined && STATE_TYPES_THAT_MATTER.has(event.type)) this.roomCache.delete(event.room_id);
      const info = await this.roomInfo(event.room_id);
      const recipients = info.members.filter((m) => m.userId !== event.sender);
      // A local user invited to the room gets .m.rule.invite_for_me.
      if (event.type === 'm.room.member' && event.content?.membership === 'invite' && typeof event.state_key === 'string' &&
          event.state_key.endsWith(`:${this.serverName}`) && !recipients.some((m) => m.userId === event.state_key)) {
        recipients.push({ userId: event.state_key, displayName: null });
      }
      if (!recipients.length) return;
      const version = info.roomVersion ? getRoomVersion(info.roomVersion) : undefined;
      const senderPowerLevel = userPowerLevel(info.state, event.sender, version);
      const threadId = await this.threadOf(event);
      const rows: PushActionRow[] = [];
      const now = Date.now();
      const notificationLevel = (key: string) => notificationPowerLevel(info.state, key);
      // Members with the default rules share the user-independent part of the evaluation.
      const defaults = new DefaultRulesEvaluator(event);
      for (const m of recipients) {
        if ((await this.accountData.getIgnoredUsers(m.userId)).has(event.sender)) continue;
        const ctx: EvalContext = {
          userId: m.userId,
          displayName: m.displayName ?? undefined,
          memberCount: info.joinedCount,
          senderPowerLevel,
          notificationLevel,
        };
        const ruleset = await this.rules.getRuleset(m.userId);
        const result = this.rules.isDefaultRuleset(ruleset) ? defaults.evaluate(ruleset, ctx) : evaluate(ruleset, event, ctx);
        if (!result.notify) continue;
        rows.push({
          userId: m.userId,
          eventId: event.event_id,
          roomId: event.room_id,
          streamOrdering: ordering,
          threadId,
          notif: true,
          highlight: result.highlight,
          actions: result.actions,
          receivedTs: now,
        });
      }
      await this.writeActions(rows);
    } catch (err) {
      // Counts are best effort: never fail the send because of them.
      this.logger.error({ err, eventId: event.event_id }, 'push evaluation failed');
    }
  }

  /**
   * Stores push actions, coalescing the rows of every event evaluated in the
   * same turn of the event loop into one transaction (one durable commit for
   * a whole group of sent events, instead of one per event). Resolves once
   * the rows are committed, so /sync woken afterwards counts them.
   */
  private writeActions(rows: PushActionRow[]): Promise<void> {
    if (!rows.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pendingActions.push({ rows, resolve, reject });
      if (this.pendingActions.length === 1) {
        setImmediate(() => {
          const group = this.pendingActions.splice(0);
          // Sorted by user: consecutive rows land in the same index pages.
          const rows = group.flatMap((g) => g.rows).sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : a.streamOrdering - b.streamOrdering));
          this.store.insertActions(rows).then(
            () => group.forEach((g) => g.resolve()),
            (e) => group.forEach((g) => g.reject(e)),
          );
        });
      }
    });
  }

  async getUnreadCounts(userId: string, roomId: string): Promise<UnreadCounts> {
    return (await this.getUnreadCountsForRooms(userId, [roomId])).get(roomId)!;
  }

  async getUnreadCountsForRooms(userId: string, roomIds: string[]): Promise<Map<string, UnreadCounts>> {
    const out = new Map<string, UnreadCounts>();
    const unthreaded = new Map<string, number>();
    const threaded = new Map<string, Map<string, number>>();
    for (const r of await this.receipts.readReceipts(userId, roomIds)) {
      if (!r.threadId) {
        unthreaded.set(r.roomId, Math.max(unthreaded.get(r.roomId) ?? 0, r.eventStreamOrdering));
      } else {
        let m = threaded.get(r.roomId);
        if (!m) threaded.set(r.roomId, (m = new Map()));
        m.set(r.threadId, Math.max(m.get(r.threadId) ?? 0, r.eventStreamOrdering));
      }
    }
    // notification/highlight_count: the main timeline (and unthreaded
    // relations); `threads`: every other thread. /sync adds the threads in
    // when the client did not ask for unread_thread_notifications.
    const after = new Map<string, number>();
    for (const roomId of roomIds) {
      out.set(roomId, { notification_count: 0, highlight_count: 0, threads: {} });
      after.set(roomId, unthreaded.get(roomId) ?? 0);
    }
    // Rooms without threaded receipts are counted in the database; the
    // others need each action's position against its thread's receipt.
    const counted = new Map<string, number>();
    const perRow = new Map<string, number>();
    for (const [roomId, pos] of after) (threaded.has(roomId) ? perRow : counted).set(roomId, pos);
    if (counted.size) {
      for (const c of await this.store.countsAfterPerRoom(userId, counted)) {
        const counts = out.get(c.roomId);
        if (!counts) continue;
        const bucket = c.threadId === 'main' ? counts : (counts.threads[c.threadId] ??= { notification_count: 0, highlight_count: 0 });
        bucket.notification_count += c.notif;
        bucket.highlight_count += c.highlight;
      }
    }
    // One query for all the other rooms, each after its own unthreaded receipt.
    if (perRow.size) for (const a of await this.store.actionsAfterPerRoom(userId, perRow)) {
      const counts = out.get(a.roomId);
      if (!counts) continue;
      const perThread = threaded.get(a.roomId);
      if (perThread && a.streamOrdering <= (perThread.get(a.threadId) ?? 0)) continue;
      const bucket = a.threadId === 'main' ? counts : (counts.threads[a.threadId] ??= { notification_count: 0, highlight_count: 0 });
      if (a.notif) bucket.notification_count++;
      if (a.highlight) bucket.highlight_count++;
    }
    return out;
  }

  /** GET /notifications: most recent first; `from` is the token returned as next_token. */
  async getNotifications(userId: string, from: number | undefined, limit: number, onlyHighlight: boolean) {
    const rows = await this.store.listNotifications(userId, from, limit, onlyHighlight);
    const events = await this.rooms.getEventJson(rows.map((r) => r.eventId));
    const roomIds = [...new Set(rows.map((r) => r.roomId))];
    const readUpTo = new Map<string, { base: number; threads: Map<string, number> }>();
    for (const r of await this.receipts.readReceipts(userId, roomIds)) {
      let e = readUpTo.get(r.roomId);
      if (!e) readUpTo.set(r.roomId, (e = { base: 0, threads: new Map() }));
      if (!r.threadId) e.base = Math.max(e.base, r.eventStreamOrdering);
      else e.threads.set(r.threadId, Math.max(e.threads.get(r.threadId) ?? 0, r.eventStreamOrdering));
    }
    const notifications = [];
    for (const r of rows) {
      const ev = events.get(r.eventId);
      if (!ev) continue;
      const read = readUpTo.get(r.roomId);
      const isRead = !!read && (r.streamOrdering <= read.base || r.streamOrdering <= (read.threads.get(r.threadId) ?? 0));
      notifications.push({
        actions: r.actions,
        event: clientEvent({ ...ev.json, event_id: r.eventId }, ev.unsignedExtra),
        // profile_tag is an optional string in the spec (never null): omitted, as we have no pusher profile tags here.
        read: isRead,
        room_id: r.roomId,
        ts: r.receivedTs,
      });
    }
    const next = rows.length === limit && rows.length ? String(rows[rows.length - 1]!.streamOrdering) : undefined;
    return next ? { notifications, next_token: next } : { notifications };
  }
}

/** A stored PDU in the client format (the fields clients see). */
function clientEvent(pdu: Record<string, any>, unsignedExtra?: Record<string, any>): Record<string, any> {
  const ev: Record<string, any> = {
    content: pdu.content ?? {},
    event_id: pdu.event_id,
    origin_server_ts: pdu.origin_server_ts,
    room_id: pdu.room_id,
    sender: pdu.sender,
    type: pdu.type,
  };
  if (pdu.state_key !== undefined) ev.state_key = pdu.state_key;
  const unsigned = { ...(pdu.unsigned ?? {}), ...(unsignedExtra ?? {}) };
  if (typeof pdu.origin_server_ts === 'number') unsigned.age = Math.max(0, Date.now() - pdu.origin_server_ts);
  ev.unsigned = unsigned;
  return ev;
}
