/**
 * Device-list tracking: the device_lists stream (a row per user whose devices
 * or cross-signing keys changed, and a row per membership change that moves a
 * user into or out of a room) and the `changed`/`left` lists of /sync and
 * /keys/changes.
 *
 * Writes go through `write`, which allocates a stream position, runs the
 * caller's change and the stream rows in one transaction, then notifies the
 * users who care (room-mates of the changed users, and the users themselves).
 * In worker mode this writer would run on the device_lists stream writer.
 */
import { writeTransaction, type Db, type Queryable } from '../../storage/db.js';
import type { KeysStore } from '../../storage/e2ee/keys-store.js';
import type { MembershipChange, PositionedMembershipChange, SharingStore } from '../../storage/e2ee/sharing-store.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';

export interface DeviceListChanges {
  changed: string[];
  left: string[];
}

type PersistedMembershipChange = MembershipChange & { streamOrdering: number };

interface PendingMemberships {
  changes: PersistedMembershipChange[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class DeviceListTracker {
  /** recordMembershipChanges calls waiting for the next batch write. */
  private pendingMemberships: PendingMemberships[] = [];
  private writingMemberships = false;

  constructor(
    private readonly db: Db,
    private readonly store: KeysStore,
    private readonly sharing: SharingStore,
    private readonly positions: StreamIdGenerator,
    /** Looked up at call time: the notifier may be wired after us. */
    private readonly notifier: () => StreamNotifier,
  ) {}

  /**
   * Runs `fn` in a transaction; the users it reports as changed get a
   * device_lists row in the same transaction, and are announced after commit.
   */
  async write<T>(fn: (tx: Queryable) => Promise<{ value: T; changed: string[] }>): Promise<T> {
    let changed: string[] = [];
    let position = 0;
    const value = await this.positions.withNext(async (pos) => {
      position = pos;
      return this.db.transaction(async (tx) => {
        const r = await fn(tx);
        changed = [...new Set(r.changed)];
        if (changed.length) await this.store.addDeviceListChanges(tx, pos, changed);
        return r.value;
      });
    });
    if (changed.length) await this.announce(position, changed);
    return value;
  }

  /** Marks users' device lists changed (outside any other write). */
  async markChanged(userIds: string[]): Promise<void> {
    if (!userIds.length) return;
    await this.write(async () => ({ value: undefined, changed: userIds }));
  }

  private async announce(position: number, changed: string[]): Promise<void> {
    const users = new Set<string>(changed);
    for (const u of changed) for (const v of await this.sharing.usersSharingRoomWith(u)) users.add(v);
    this.notifier().notify({ stream: 'device_lists', position, users: [...users] });
  }

  getCurrentPosition(): number {
    return this.positions.getCurrent();
  }

  /**
   * Records membership changes (from persisted m.room.member events) at a
   * device_lists position, and wakes the rooms' members. Changes that do
   * not move a user into or out of a room (profile updates) are skipped.
   *
   * Calls made in the same event-loop turn, or while a previous batch is
   * being written, are written together: one transaction, each call's rows
   * at a position of its own (allocated in call order, so the rows are those
   * of sequential calls), one notification at the last position for all the
   * users to wake. A call resolves once its rows are committed.
   */
  recordMembershipChanges(changes: PersistedMembershipChange[]): Promise<void> {
    if (!changes.length) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pendingMemberships.push({ changes, resolve, reject });
      if (this.writingMemberships) return;
      this.writingMemberships = true;
      queueMicrotask(() => void this.writePendingMemberships());
    });
  }

  private async writePendingMemberships(): Promise<void> {
    try {
      while (this.pendingMemberships.length) {
        const batch = this.pendingMemberships;
        this.pendingMemberships = [];
        let written: Awaited<ReturnType<DeviceListTracker['writeMemberships']>>;
        try {
          written = await this.writeMemberships(batch.map((b) => b.changes));
        } catch (e) {
          // One call's failure must not fail the others: write them one by one.
          if (batch.length === 1) batch[0].reject(e);
          else for (const b of batch) await this.recordMembershipsAlone(b);
          continue;
        }
        try {
          if (written) await this.announceMemberships(written.position, written.rows);
          for (const b of batch) b.resolve();
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.writingMemberships = false;
    }
  }

  private async recordMembershipsAlone(p: PendingMemberships): Promise<void> {
    try {
      const written = await this.writeMemberships([p.changes]);
      if (written) await this.announceMemberships(written.position, written.rows);
      p.resolve();
    } catch (e) {
      p.reject(e);
    }
  }

  /** Writes the calls' real changes, each call's at its own position; the last position and the rows, or undefined if none. */
  private async writeMemberships(calls: PersistedMembershipChange[][]): Promise<{ position: number; rows: PositionedMembershipChange[] } | undefined> {
    const before = await this.sharing.previousMemberships(calls.flat());
    let k = 0;
    const perCall: MembershipChange[][] = [];
    for (const changes of calls) {
      const real: MembershipChange[] = [];
      for (const c of changes) {
        if (sharing(before[k++]) !== sharing(c.membership)) real.push({ roomId: c.roomId, userId: c.userId, membership: c.membership });
      }
      if (real.length) perCall.push(real);
    }
    if (!perCall.length) return undefined;
    const rows: PositionedMembershipChange[] = [];
    let position = 0;
    await this.positions.withMany(perCall.length, async (ids) => {
      perCall.forEach((real, i) => {
        for (const c of real) rows.push({ ...c, position: ids[i] });
      });
      position = ids[ids.length - 1];
      await writeTransaction(this.db, (tx) => this.sharing.addMembershipChanges(tx, rows));
    });
    return { position, rows };
  }

  private async announceMemberships(position: number, rows: PositionedMembershipChange[]): Promise<void> {
    const users = new Set<string>(rows.map((c) => c.userId));
    for (const u of await this.sharing.membersOfRooms([...new Set(rows.map((c) => c.roomId))])) users.add(u);
    this.notifier().notify({ stream: 'device_lists', position, users: [...users] });
  }

  /**
   * For device_lists positions in (from, to]: `changed` holds users sharing
   * a room with `userId` (and `userId` itself) whose devices or
   * cross-signing keys changed, and users who came to share a room with
   * `userId`; `left` holds users who no longer share any room with `userId`
   * after a membership change in the range.
   */
  async getChanges(userId: string, from: number, to: number): Promise<DeviceListChanges> {
    if (to <= from) return { changed: [], left: [] };
    const [sharedNow, keyChanges, rows] = await Promise.all([
      this.sharing.usersSharingRoomWith(userId),
      this.store.deviceListChangesInRange(from, to),
      this.sharing.membershipChangesInRange(userId, from, to),
    ]);
    const changed = new Set<string>();
    for (const u of keyChanges) if (u === userId || sharedNow.has(u)) changed.add(u);

    const joinedRooms: string[] = [];
    const leftRooms: string[] = [];
    const newcomers = new Set<string>();
    const leavers = new Set<string>();
    for (const r of rows) {
      const entered = sharing(r.membership);
      if (r.userId === userId) (entered ? joinedRooms : leftRooms).push(r.roomId);
      else (entered ? newcomers : leavers).add(r.userId);
    }
    for (const u of await this.sharing.membersOfRooms(joinedRooms)) newcomers.add(u);
    for (const u of await this.sharing.membersOfRooms(leftRooms)) leavers.add(u);
    for (const u of newcomers) if (u !== userId && sharedNow.has(u)) changed.add(u);
    const left = new Set<string>();
    for (const u of leavers) if (u !== userId && !sharedNow.has(u)) left.add(u);
    for (const u of left) changed.delete(u);
    return { changed: [...changed].sort(), left: [...left].sort() };
  }
}

/** Memberships that count as sharing a room. */
function sharing(membership: string | undefined): boolean {
  return membership === 'join' || membership === 'invite';
}
