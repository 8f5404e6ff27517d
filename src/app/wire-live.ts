/**
 * Wires the live-streams capability: receipts, account data (and tags),
 * to-device, presence, push rules and push evaluation / unread counts.
 * Each stream gets its StreamIdGenerator in `services.streams`, and every
 * write goes through a writer obtained from makeWriter, so that in worker
 * mode it runs on the stream's writer process.
 */
import { AccountDataService, LocalAccountDataWriter, type AccountDataWriter } from '../services/account-data/account-data-service.js';
import { DEFAULT_PRESENCE_OPTIONS, LocalPresenceWriter, PresenceService, type PresenceOptions, type PresenceWriter } from '../services/presence/presence-service.js';
import { LocalPushRulesWriter, PushRulesService, type PushRulesWriter } from '../services/push/push-rules-service.js';
import { PushService } from '../services/push/push-service.js';
import { LocalReceiptWriter, ReceiptsService, type ReceiptWriter } from '../services/receipts/receipts-service.js';
import { LocalToDeviceWriter, ToDeviceService, type ToDeviceWriter } from '../services/to-device/to-device-service.js';
import { AccountDataStore } from '../storage/live/account-data-store.js';
import { PresenceStore } from '../storage/live/presence-store.js';
import { PushStore } from '../storage/live/push-store.js';
import { ReceiptsStore } from '../storage/live/receipts-store.js';
import { RoomQueries } from '../storage/live/room-queries.js';
import { liveGenerator } from '../storage/live/stream-heads.js';
import { ToDeviceStore } from '../storage/live/to-device-store.js';
import { writerOf } from '../workers/role.js';
import { makeWriter } from '../workers/runtime.js';
import { caches } from '../workers/caches.js';
import { normaliseInstance } from '../workers/streams.js';
import type { Services } from './services.js';

/** The concrete services of the capability (route handlers use these). */
export interface LiveServices {
  receipts: ReceiptsService;
  accountData: AccountDataService;
  toDevice: ToDeviceService;
  presence: PresenceService;
  pushRules: PushRulesService;
  push: PushService;
}

function presenceOptions(cfg: Record<string, any> | undefined): PresenceOptions {
  const num = (v: unknown, d: number) => (typeof v === 'number' && v > 0 ? v : d);
  return {
    enabled: cfg?.enabled !== false,
    // Myelin extensions (not Synapse keys), mainly for tests.
    idleMs: num(cfg?.idle_timeout_ms, DEFAULT_PRESENCE_OPTIONS.idleMs),
    offlineMs: num(cfg?.offline_timeout_ms, DEFAULT_PRESENCE_OPTIONS.offlineMs),
    tickMs: num(cfg?.timeout_check_interval_ms, DEFAULT_PRESENCE_OPTIONS.tickMs),
  };
}

export async function wireLive(services: Services): Promise<void> {
  const { db, notifier } = services;
  const rooms = new RoomQueries(db);

  // Stream positions.
  const streams = services.streams;
  streams.receipts = await liveGenerator(db, 'receipts', [{ table: 'receipts', column: 'stream_id' }]);
  streams.account_data = await liveGenerator(db, 'account_data', [{ table: 'account_data', column: 'stream_id' }]);
  streams.to_device = await liveGenerator(db, 'to_device', [
    { table: 'device_inbox', column: 'stream_id' },
    { table: 'to_device_txns', column: 'stream_id' },
  ]);
  streams.presence = await liveGenerator(db, 'presence', [{ table: 'presence', column: 'stream_id' }]);
  streams.push_rules = await liveGenerator(db, 'push_rules', [{ table: 'push_rules_stream', column: 'stream_id' }]);
  // The notifier is read at call time: the sync capability may replace it after us.
  const notify = { notify: (c: Parameters<Services['notifier']['notify']>[0]) => services.notifier.notify(c) };
  void notifier;

  // Account data.
  const accountDataStore = new AccountDataStore(db);
  const accountData = new AccountDataService(accountDataStore);
  // Caches are dropped in every process through the caches stream (src/workers/caches.ts).
  caches(services).register('account_data', ([u, r, t]) => accountData.invalidate(u!, r!, t!), () => accountData.invalidateAll());
  const localAd = new LocalAccountDataWriter(db, accountDataStore, streams.account_data, notify, (u, r, t) => caches(services).invalidate('account_data', [u, r, t]));
  type AdReq = { op: 'put' | 'tag' | 'untag'; userId: string; roomId: string; key: string; content?: Record<string, any> };
  const adCall = makeWriter<AdReq, number>(services, {
    stream: 'account_data',
    endpoint: 'live_account_data',
    local: async (q) =>
      q.op === 'put'
        ? localAd.putAccountData(q.userId, q.roomId, q.key, q.content ?? {})
        : q.op === 'tag'
          ? localAd.putTag(q.userId, q.roomId, q.key, q.content ?? {})
          : localAd.deleteTag(q.userId, q.roomId, q.key),
  });
  const adWriter: AccountDataWriter = {
    putAccountData: (userId, roomId, key, content) => adCall({ op: 'put', userId, roomId, key, content }),
    putTag: (userId, roomId, key, content) => adCall({ op: 'tag', userId, roomId, key, content }),
    deleteTag: (userId, roomId, key) => adCall({ op: 'untag', userId, roomId, key }),
  };
  accountData.setWriter(adWriter);

  // Receipts.
  const receiptsStore = new ReceiptsStore(db);
  const receipts = new ReceiptsService(receiptsStore, rooms, accountData);
  const localReceipts = new LocalReceiptWriter(receiptsStore, streams.receipts, notify);
  const receiptCall = makeWriter<Parameters<ReceiptWriter['writeReceipt']>[0], number | null>(services, {
    stream: 'receipts',
    endpoint: 'live_receipt',
    local: async (r) => (await localReceipts.writeReceipt(r)) ?? null,
  });
  receipts.setWriter({ writeReceipt: async (r) => (await receiptCall(r)) ?? undefined });

  // To-device.
  const toDeviceStore = new ToDeviceStore(db);
  const toDevice = new ToDeviceService(toDeviceStore, rooms, services.serverName, services.logger);
  const localTd = new LocalToDeviceWriter(db, toDeviceStore, streams.to_device, notify);
  type TdReq =
    | { op: 'send'; sender: string; senderDevice: string; eventType: string; txnId: string; messages: Parameters<ToDeviceWriter['writeMessages']>[4] }
    | { op: 'ack'; userId: string; deviceId: string; position: number };
  const tdCall = makeWriter<TdReq, number | null>(services, {
    stream: 'to_device',
    endpoint: 'live_to_device',
    local: async (q) => {
      if (q.op === 'send') return (await localTd.writeMessages(q.sender, q.senderDevice, q.eventType, q.txnId, q.messages)) ?? null;
      await localTd.deleteUpTo(q.userId, q.deviceId, q.position);
      return null;
    },
  });
  toDevice.setWriter({
    writeMessages: async (sender, senderDevice, eventType, txnId, messages) =>
      (await tdCall({ op: 'send', sender, senderDevice, eventType, txnId, messages })) ?? undefined,
    deleteUpTo: async (userId, deviceId, position) => {
      await tdCall({ op: 'ack', userId, deviceId, position });
    },
  });

  // Presence.
  const presenceStore = new PresenceStore(db);
  const presence = new PresenceService(presenceStore, rooms, presenceOptions(services.config.presence as Record<string, any>), (err) =>
    services.logger.error({ err }, 'presence timeout check failed'),
  );
  const localPresence = new LocalPresenceWriter(presenceStore, streams.presence, notify, rooms);
  const presenceCall = makeWriter<Parameters<PresenceWriter['writePresence']>[0], number>(services, {
    stream: 'presence',
    endpoint: 'live_presence',
    local: (row) => localPresence.writePresence(row),
  });
  presence.setWriter({ writePresence: (row) => presenceCall(row) });

  // Push rules and push evaluation.
  const pushStore = new PushStore(db);
  const pushRules = new PushRulesService(pushStore);
  caches(services).register('push_rules', (users) => users.forEach((u) => pushRules.invalidate(u)), () => pushRules.invalidateAll());
  const localRules = new LocalPushRulesWriter(db, pushStore, streams.push_rules, notify, (u) => caches(services).invalidate('push_rules', [u]));
  type PrReq = { op: 'put' | 'delete' | 'enabled' | 'actions'; userId: string; kind: any; ruleId: string; rule?: any; before?: string; after?: string; enabled?: boolean; actions?: any[] };
  const prCall = makeWriter<PrReq, number>(services, {
    stream: 'push_rules',
    endpoint: 'live_push_rules',
    local: async (q) => {
      switch (q.op) {
        case 'put':
          return localRules.putRule(q.userId, q.kind, q.rule, q.before, q.after);
        case 'delete':
          return localRules.deleteRule(q.userId, q.kind, q.ruleId);
        case 'enabled':
          return localRules.setEnabled(q.userId, q.kind, q.ruleId, !!q.enabled);
        case 'actions':
          return localRules.setActions(q.userId, q.kind, q.ruleId, q.actions ?? []);
      }
    },
  });
  const rulesWriter: PushRulesWriter = {
    putRule: (userId, kind, rule, before, after) => prCall({ op: 'put', userId, kind, ruleId: rule.rule_id, rule, before, after }),
    deleteRule: (userId, kind, ruleId) => prCall({ op: 'delete', userId, kind, ruleId }),
    setEnabled: (userId, kind, ruleId, enabled) => prCall({ op: 'enabled', userId, kind, ruleId, enabled }),
    setActions: (userId, kind, ruleId, actions) => prCall({ op: 'actions', userId, kind, ruleId, actions }),
  };
  pushRules.setWriter(rulesWriter);
  const push = new PushService(pushStore, rooms, pushRules, receipts, accountData, services.serverName, services.logger);
  // The push service keeps each room's members and power levels from the
  // events it persists; an event of the room persisted by another process
  // (a profile change, room creation) makes that copy stale. Its own events
  // keep the copy current (prepareBatch): dropping it on those would cost
  // four reads per sent message.
  services.syncNotifier.observers.push((c, local) => {
    if (c.stream === 'events' && !local) for (const roomId of c.rooms ?? []) push.roomWrittenElsewhere(roomId);
  });

  services.receipts = receipts;
  services.accountData = accountData;
  services.toDevice = toDevice;
  services.presence = presence;
  services.pushRules = pushRules;
  services.push = push;
  services.live = { receipts, accountData, toDevice, presence, pushRules, push };

  // Only the presence writer runs the timeout timer.
  if (normaliseInstance(writerOf(services.config, 'presence')) === normaliseInstance(services.instanceName)) await presence.start();
  services.onShutdown.push(() => presence.stop());
  services.shutdownSignal.addEventListener('abort', () => presence.stop(), { once: true });
}
