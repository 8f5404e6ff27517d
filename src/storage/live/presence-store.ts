/** Presence: one row per user with its latest state and stream position. */
import type { Db } from '../db.js';
import type { PresenceState } from '../../streams/sync-sources.js';

export interface PresenceRow {
  userId: string;
  state: PresenceState;
  statusMsg: string | null;
  lastActiveTs: number;
  currentlyActive: boolean;
  streamId: number;
}

function toRow(r: any): PresenceRow {
  return {
    userId: r.user_id,
    state: r.state,
    statusMsg: r.status_msg ?? null,
    lastActiveTs: Number(r.last_active_ts),
    currentlyActive: !!Number(r.currently_active),
    streamId: Number(r.stream_id),
  };
}

/** Presence positions in a range up to which rows are checked one by one (see changedVisibleTo). */
const SHORT_RANGE = 256;

export class PresenceStore {
  constructor(private readonly db: Db) {}

  async get(userId: string): Promise<PresenceRow | undefined> {
    const r = await this.db.queryOne('SELECT * FROM presence WHERE user_id = ?', [userId]);
    return r ? toRow(r) : undefined;
  }

  async upsert(row: PresenceRow): Promise<void> {
    await this.db.execute(
      `INSERT INTO presence (user_id, state, status_msg, last_active_ts, currently_active, stream_id) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,
         last_active_ts = excluded.last_active_ts, currently_active = excluded.currently_active, stream_id = excluded.stream_id`,
      [row.userId, row.state, row.statusMsg, row.lastActiveTs, row.currentlyActive ? 1 : 0, row.streamId],
    );
  }

  /**
   * Rows changed in (from, to] for users sharing a joined room with `viewer`,
   * and the viewer's own. A short range (an incremental /sync) checks each
   * changed row for a shared room (a few index probes per row); a long one
   * (an initial sync) builds the set of co-members once instead.
   */
  async changedVisibleTo(viewer: string, from: number, to: number): Promise<PresenceRow[]> {
    if (to <= from) return [];
    const shared =
      to - from <= SHORT_RANGE
        ? `EXISTS (SELECT 1 FROM current_membership b JOIN current_membership a ON a.room_id = b.room_id AND a.user_id = ?
             WHERE b.user_id = p.user_id AND b.membership = 'join' AND a.membership = 'join')`
        : `p.user_id IN (SELECT b.user_id FROM current_membership a JOIN current_membership b ON b.room_id = a.room_id
             WHERE a.user_id = ? AND a.membership = 'join' AND b.membership = 'join')`;
    const rows = await this.db.query(
      `SELECT p.* FROM presence p WHERE p.stream_id > ? AND p.stream_id <= ? AND (p.user_id = ? OR ${shared}) ORDER BY p.stream_id`,
      [from, to, viewer, viewer],
    );
    return rows.map(toRow);
  }

  /** Users currently not offline (to restore timers after a restart). */
  async notOffline(): Promise<PresenceRow[]> {
    return (await this.db.query(`SELECT * FROM presence WHERE state <> 'offline'`)).map(toRow);
  }
}
