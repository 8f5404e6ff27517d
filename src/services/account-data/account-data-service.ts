/**
 * Account data: global and per room, tags (served as room account data
 * `m.tag`) and the ignored-users list. One stream, `account_data`.
 *
 * Writes go through `AccountDataWriter` so that, in worker mode, another
 * process can forward them to the stream's writer.
 */
import type { Db } from '../../storage/db.js';
import type { AccountDataStore } from '../../storage/live/account-data-store.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import type { AccountDataSource, ClientEvent } from '../../streams/sync-sources.js';

/** Marks an account_data row whose content is built from room_tags. */
export const TAG_TYPE = 'm.tag';
export const IGNORED_USERS_TYPE = 'm.ignored_user_list';

export interface AccountDataWriter {
  /** roomId '' = global. Returns the stream position of the write. */
  putAccountData(userId: string, roomId: string, type: string, content: Record<string, any>): Promise<number>;
  putTag(userId: string, roomId: string, tag: string, content: Record<string, any>): Promise<number>;
  deleteTag(userId: string, roomId: string, tag: string): Promise<number>;
}

/** The writer in this process: stores the row and wakes the user's long-polls. */
export class LocalAccountDataWriter implements AccountDataWriter {
  constructor(
    private readonly db: Db,
    private readonly store: AccountDataStore,
    private readonly gen: StreamIdGenerator,
    private readonly notifier: StreamNotifier,
    private readonly onWrite: (userId: string, roomId: string, type: string) => void,
  ) {}

  private async write(userId: string, roomId: string, type: string, body: (id: number) => Promise<void>): Promise<number> {
    const pos = await this.gen.withNext(async (id) => {
      await body(id);
      return id;
    });
    this.onWrite(userId, roomId, type);
    this.notifier.notify({ stream: 'account_data', position: pos, users: [userId] });
    return pos;
  }

  putAccountData(userId: string, roomId: string, type: string, content: Record<string, any>): Promise<number> {
    return this.write(userId, roomId, type, (id) => this.store.put(this.db, userId, roomId, type, content, id));
  }

  putTag(userId: string, roomId: string, tag: string, content: Record<string, any>): Promise<number> {
    return this.write(userId, roomId, TAG_TYPE, (id) =>
      this.db.transaction(async (tx) => {
        await this.store.putTag(tx, userId, roomId, tag, content);
        await this.store.put(tx, userId, roomId, TAG_TYPE, {}, id);
      }),
    );
  }

  deleteTag(userId: string, roomId: string, tag: string): Promise<number> {
    return this.write(userId, roomId, TAG_TYPE, (id) =>
      this.db.transaction(async (tx) => {
        await this.store.deleteTag(tx, userId, roomId, tag);
        await this.store.put(tx, userId, roomId, TAG_TYPE, {}, id);
      }),
    );
  }
}

export class AccountDataService implements AccountDataSource {
  private writer!: AccountDataWriter;
  /** Ignored users per user (invalidated by writes in this process). */
  private readonly ignoredCache = new Map<string, Set<string>>();

  constructor(private readonly store: AccountDataStore) {}

  setWriter(w: AccountDataWriter): void {
    this.writer = w;
  }

  /**
   * Counts the changes of ignored users: what was derived from them at one
   * value (push evaluation's split of a room's members) holds while it is unchanged.
   */
  ignoredVersion = 0;

  /** Called by the writer after each write (and by replication later). */
  invalidate(userId: string, _roomId: string, type: string): void {
    if (type !== IGNORED_USERS_TYPE) return;
    this.ignoredVersion++;
    this.ignoredCache.delete(userId);
  }

  /** Drops every cached entry (worker mode: invalidations may have been missed). */
  invalidateAll(): void {
    this.ignoredVersion++;
    this.ignoredCache.clear();
  }

  put(userId: string, roomId: string | undefined, type: string, content: Record<string, any>): Promise<number> {
    return this.writer.putAccountData(userId, roomId ?? '', type, content);
  }

  async get(userId: string, roomId: string | undefined, type: string): Promise<Record<string, any> | undefined> {
    if (roomId && type === TAG_TYPE) {
      const exists = await this.store.get(userId, roomId, TAG_TYPE);
      return exists ? { tags: await this.store.getTags(userId, roomId) } : undefined;
    }
    return this.store.get(userId, roomId ?? '', type);
  }

  getTags(userId: string, roomId: string): Promise<Record<string, Record<string, any>>> {
    return this.store.getTags(userId, roomId);
  }

  putTag(userId: string, roomId: string, tag: string, content: Record<string, any>): Promise<number> {
    return this.writer.putTag(userId, roomId, tag, content);
  }

  deleteTag(userId: string, roomId: string, tag: string): Promise<number> {
    return this.writer.deleteTag(userId, roomId, tag);
  }

  async getUpdates(userId: string, from: number, to: number): Promise<{ global: ClientEvent[]; rooms: Map<string, ClientEvent[]> }> {
    const rows = await this.store.changed(userId, from, to);
    const global: ClientEvent[] = [];
    const rooms = new Map<string, ClientEvent[]>();
    const tagRooms = rows.filter((r) => r.roomId && r.type === TAG_TYPE).map((r) => r.roomId);
    const tags = await this.store.getTagsForRooms(userId, tagRooms);
    for (const r of rows) {
      if (!r.roomId) {
        global.push({ type: r.type, content: r.content });
        continue;
      }
      const content = r.type === TAG_TYPE ? { tags: tags.get(r.roomId) ?? {} } : r.content;
      let list = rooms.get(r.roomId);
      if (!list) rooms.set(r.roomId, (list = []));
      list.push({ type: r.type, content });
    }
    return { global, rooms };
  }

  /** The ignored users when cached (no await on the push evaluation path), else undefined. */
  cachedIgnoredUsers(userId: string): Set<string> | undefined {
    return this.ignoredCache.get(userId);
  }

  async getIgnoredUsers(userId: string): Promise<Set<string>> {
    let s = this.ignoredCache.get(userId);
    if (s) return s;
    const version = this.ignoredVersion;
    const content = await this.store.get(userId, '', IGNORED_USERS_TYPE);
    const ignored = content?.ignored_users;
    s = new Set(ignored && typeof ignored === 'object' && !Array.isArray(ignored) ? Object.keys(ignored) : []);
    // A change invalidated during the read may be newer than what was read: not cached then.
    if (this.ignoredVersion !== version) return s;
    if (this.ignoredCache.size > 10_000) this.ignoredCache.clear();
    this.ignoredCache.set(userId, s);
    return s;
  }
}
