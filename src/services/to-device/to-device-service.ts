/**
 * Send-to-device messaging. Messages wait in the device inbox until a later
 * /sync acknowledges them (deleteUpTo), so nothing is lost while the
 * receiving device is offline. Stream: `to_device`.
 */
import type { Logger } from 'pino';
import type { Db } from '../../storage/db.js';
import type { RoomQueries } from '../../storage/live/room-queries.js';
import { raiseStreamHead } from '../../storage/live/stream-heads.js';
import type { InboxMessage, ToDeviceStore } from '../../storage/live/to-device-store.js';
import type { StreamIdGenerator } from '../../streams/id-generator.js';
import type { StreamNotifier } from '../../streams/notifier-types.js';
import type { ClientEvent, ToDeviceSource } from '../../streams/sync-sources.js';
import { validateEventType, validateTxnId } from '../path-ids.js';

export interface ToDeviceWriter {
  /**
   * Stores the messages unless (sender, senderDevice, eventType, txnId) was
   * used before: a txn id is scoped by the endpoint path, which names the
   * event type (PUT /sendToDevice/{eventType}/{txnId}). Returns the stream
   * position, or undefined for a repeated transaction.
   */
  writeMessages(sender: string, senderDevice: string, eventType: string, txnId: string, messages: InboxMessage[]): Promise<number | undefined>;
  deleteUpTo(userId: string, deviceId: string, position: number): Promise<void>;
}

export class LocalToDeviceWriter implements ToDeviceWriter {
  constructor(
    private readonly db: Db,
    private readonly store: ToDeviceStore,
    private readonly gen: StreamIdGenerator,
    private readonly notifier: StreamNotifier,
  ) {}

  async writeMessages(sender: string, senderDevice: string, eventType: string, txnId: string, messages: InboxMessage[]): Promise<number | undefined> {
    const result = await this.gen.withNext((id) =>
      this.db.transaction(async (tx) => {
        if (!(await this.store.claimTxn(tx, sender, senderDevice, eventType, txnId, id))) return undefined;
        await this.store.insert(tx, id, messages);
        return id;
      }),
    );
    if (result !== undefined && messages.length) {
      this.notifier.notify({ stream: 'to_device', position: result, users: [...new Set(messages.map((m) => m.userId))] });
    }
    return result;
  }

  async deleteUpTo(userId: string, deviceId: string, position: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await raiseStreamHead(tx, 'to_device', position);
      await this.store.deleteUpTo(tx, userId, deviceId, position);
    });
  }
}

export class ToDeviceService implements ToDeviceSource {
  private writer!: ToDeviceWriter;

  constructor(
    private readonly store: ToDeviceStore,
    private readonly rooms: RoomQueries,
    private readonly serverName: string,
    private readonly logger: Logger,
  ) {}

  setWriter(w: ToDeviceWriter): void {
    this.writer = w;
  }

  /**
   * PUT /sendToDevice/{eventType}/{txnId}: `messages` maps user id -> device
   * id (or `*` for every device of the user) -> content.
   */
  async send(sender: string, senderDevice: string, eventType: string, txnId: string, messages: Record<string, Record<string, Record<string, any>>>): Promise<void> {
    // With the user and device ids they are one index entry.
    validateEventType(eventType);
    validateTxnId(txnId);
    const inbox: InboxMessage[] = [];
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (!userId.endsWith(`:${this.serverName}`)) {
        // Federation (m.direct_to_device EDUs) comes later.
        this.logger.info({ userId, eventType }, 'to-device message for a remote user ignored (no federation yet)');
        continue;
      }
      const devices = new Set(await this.rooms.deviceIds(userId));
      const targets = new Map<string, Record<string, any>>();
      for (const [deviceId, content] of Object.entries(byDevice)) {
        if (deviceId === '*') {
          for (const d of devices) if (!targets.has(d)) targets.set(d, content);
        } else if (devices.has(deviceId)) {
          targets.set(deviceId, content); // an explicit device id wins over '*'
        }
      }
      for (const [deviceId, content] of targets) {
        inbox.push({ userId, deviceId, message: { type: eventType, sender, content } });
      }
    }
    await this.writer.writeMessages(sender, senderDevice, eventType, txnId, inbox);
  }

  async getMessages(userId: string, deviceId: string, from: number, to: number, limit: number): Promise<{ events: ClientEvent[]; lastPosition: number }> {
    if (to <= from || limit <= 0) return { events: [], lastPosition: from };
    const rows = await this.store.fetch(userId, deviceId, from, to, limit);
    // When the limit cut the list short, the client resumes after the last one delivered.
    const lastPosition = rows.length === limit ? rows[rows.length - 1]!.streamId : to;
    return { events: rows.map((r) => r.message as ClientEvent), lastPosition };
  }

  deleteUpTo(userId: string, deviceId: string, position: number): Promise<void> {
    return this.writer.deleteUpTo(userId, deviceId, position);
  }
}
