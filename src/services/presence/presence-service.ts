/**
 * Presence: online / unavailable / offline with a status message, shared
 * with users who share a room. Stream: `presence`.
 *
 * The writer keeps every non-offline user in memory and checks them on one
 * timer (every `tickMs`): online users idle for `idleMs` become unavailable;
 * users who have not synced (or set their presence) for `offlineMs` go
 * offline. A /sync long-poll lasts up to ~30 s, so `offlineMs` counts from
 * the start of the last sync request. No per-user timers, no busy loops.
 */
import type { PresenceRow, PresenceStore } from '../../storage/live/presence-store.js';
import type { RoomQueries } from '../../storage/live/room-queries.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import type { ClientEvent, PresenceSource, PresenceState } from '../../streams/sync-sources.js';
import { Errors } from '../../util/errors.js';

export interface PresenceOptions {
  enabled: boolean;
  idleMs: number;
  offlineMs: number;
  tickMs: number;
}

export const DEFAULT_PRESENCE_OPTIONS: PresenceOptions = { enabled: true, idleMs: 5 * 60_000, offlineMs: 60_000, tickMs: 5_000 };

export interface PresenceWriter {
  writePresence(row: Omit<PresenceRow, 'streamId'>): Promise<number>;
}

export class LocalPresenceWriter implements PresenceWriter {
  constructor(
    private readonly store: PresenceStore,
    private readonly gen: StreamIdGenerator,
    private readonly notifier: StreamNotifier,
    private readonly rooms: RoomQueries,
  ) {}

  async writePresence(row: Omit<PresenceRow, 'streamId'>): Promise<number> {
    const pos = await this.gen.withNext(async (id) => {
      await this.store.upsert({ ...row, streamId: id });
      return id;
    });
    // Everyone who shares a room with the user (and the user) may see it.
    const users = [...(await this.rooms.usersSharingRoomWith(row.userId))];
    this.notifier.notify({ stream: 'presence', position: pos, users });
    return pos;
  }
}

interface Live {
  state: PresenceState;
  statusMsg: string | null;
  lastActiveTs: number;
  currentlyActive: boolean;
  /** Last sync request or explicit presence change. */
  lastSeenTs: number;
}

/** What the timer should do to one user at `now` (pure, for tests). */
export function timeoutTransition(p: Live, now: number, opts: Pick<PresenceOptions, 'idleMs' | 'offlineMs'>): PresenceState | undefined {
  if (p.state === 'offline') return undefined;
  if (now - p.lastSeenTs > opts.offlineMs) return 'offline';
  if (p.state === 'online' && now - p.lastActiveTs > opts.idleMs) return 'unavailable';
  return undefined;
}

export class PresenceService implements PresenceSource {
  private writer!: PresenceWriter;
  private readonly live = new Map<string, Live>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(
    private readonly store: PresenceStore,
    private readonly rooms: RoomQueries,
    readonly opts: PresenceOptions,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  setWriter(w: PresenceWriter): void {
    this.writer = w;
  }

  /** Loads users who were not offline and starts the timeout timer. */
  async start(): Promise<void> {
    if (!this.opts.enabled) return;
    const now = Date.now();
    for (const r of await this.store.notOffline()) {
      // After a restart every client gets the full grace period to reconnect.
      this.live.set(r.userId, { state: r.state, statusMsg: r.statusMsg, lastActiveTs: r.lastActiveTs, currentlyActive: r.currentlyActive, lastSeenTs: now });
    }
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Applies idle and offline timeouts. */
  async tick(now = Date.now()): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const [userId, p] of this.live) {
        const next = timeoutTransition(p, now, this.opts);
        if (!next) continue;
        await this.set(userId, { ...p, state: next, currentlyActive: false });
      }
    } catch (e) {
      this.onError(e);
    } finally {
      this.ticking = false;
    }
  }

  private async set(userId: string, p: Live): Promise<void> {
    if (p.state === 'offline') this.live.delete(userId);
    else this.live.set(userId, p);
    await this.writer.writePresence({ userId, state: p.state, statusMsg: p.statusMsg, lastActiveTs: p.lastActiveTs, currentlyActive: p.currentlyActive });
  }

  private async current(userId: string): Promise<Live | undefined> {
    const l = this.live.get(userId);
    if (l) return l;
    const row = await this.store.get(userId);
    if (!row) return undefined;
    return { state: row.state, statusMsg: row.statusMsg, lastActiveTs: row.lastActiveTs, currentlyActive: row.currentlyActive, lastSeenTs: 0 };
  }

  /** PUT /presence/{userId}/status. */
  async setPresence(userId: string, state: PresenceState, statusMsg: string | undefined): Promise<void> {
    if (!this.opts.enabled) return;
    const now = Date.now();
    const prev = await this.current(userId);
    await this.set(userId, {
      state,
      statusMsg: statusMsg !== undefined ? statusMsg : (prev?.statusMsg ?? null),
      lastActiveTs: state === 'online' ? now : (prev?.lastActiveTs ?? now),
      currentlyActive: state === 'online',
      lastSeenTs: now,
    });
  }

  /** GET /presence/{userId}/status, as seen by `viewer`. */
  async getPresence(viewer: string, userId: string): Promise<Record<string, unknown>> {
    if (!(await this.rooms.shareRoom(viewer, userId))) throw Errors.forbidden('You do not share a room with this user');
    if (!this.opts.enabled) return { presence: 'offline' };
    const p = await this.current(userId);
    if (!p) return { presence: 'offline' };
    return this.content(p, Date.now());
  }

  private content(p: { state: PresenceState; statusMsg: string | null; lastActiveTs: number; currentlyActive: boolean }, now: number): Record<string, unknown> {
    const c: Record<string, unknown> = {
      presence: p.state,
      last_active_ago: Math.max(0, now - p.lastActiveTs),
      currently_active: p.state === 'online' && p.currentlyActive,
    };
    if (p.statusMsg != null) c.status_msg = p.statusMsg;
    return c;
  }

  async userSyncing(userId: string, setPresence: PresenceState | undefined): Promise<void> {
    if (!this.opts.enabled) return;
    const wanted = setPresence ?? 'online';
    // set_presence=offline: the sync does not touch presence at all.
    if (wanted === 'offline') return;
    const now = Date.now();
    const l = this.live.get(userId);
    if (l) {
      // Already present: the sync only keeps the user from timing out.
      // Activity (last_active_ago) is bumped by bumpActive, not by syncing.
      l.lastSeenTs = now;
      if (wanted === 'unavailable' && l.state === 'online') await this.set(userId, { ...l, state: 'unavailable', currentlyActive: false });
      return;
    }
    const prev = await this.current(userId);
    await this.set(userId, {
      state: wanted,
      statusMsg: prev?.statusMsg ?? null,
      lastActiveTs: wanted === 'online' ? now : (prev?.lastActiveTs ?? now),
      currentlyActive: wanted === 'online',
      lastSeenTs: now,
    });
  }

  /** Worker mode (presence writer): a user's /sync is running on another process (USER_SYNC). */
  touch(userId: string, now = Date.now()): void {
    const l = this.live.get(userId);
    if (l) l.lastSeenTs = Math.max(l.lastSeenTs, now);
  }

  /** The user did something (sent an event...): online and currently active again. */
  async bumpActive(userId: string): Promise<void> {
    if (!this.opts.enabled) return;
    const now = Date.now();
    const l = this.live.get(userId);
    if (l && l.state === 'online' && l.currentlyActive) {
      l.lastActiveTs = now;
      l.lastSeenTs = now;
      return;
    }
    const prev = l ?? (await this.current(userId));
    await this.set(userId, { state: 'online', statusMsg: prev?.statusMsg ?? null, lastActiveTs: now, currentlyActive: true, lastSeenTs: now });
  }

  async getUpdates(userId: string, from: number, to: number): Promise<ClientEvent[]> {
    if (!this.opts.enabled || to <= from) return [];
    const rows = await this.store.changedVisibleTo(userId, from, to);
    const now = Date.now();
    return rows.map((r) => {
      const l = this.live.get(r.userId);
      const lastActiveTs = Math.max(r.lastActiveTs, l?.lastActiveTs ?? 0);
      return { type: 'm.presence', sender: r.userId, content: this.content({ ...r, lastActiveTs }, now) };
    });
  }
}
