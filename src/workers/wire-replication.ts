/**
 * Assembly's last step: makes the streams flow between processes (worker
 * mode on PostgreSQL + Redis). Services are untouched: this taps the
 * notifier (local changes are published), applies other processes' rows,
 * catches up from the database, and sets up
 *   - typing: the writer answers `typing_updates` (readers that fell behind);
 *   - presence: on processes other than the presence writer, presence
 *     changes and /sync activity go to the writer (HTTP replication, then
 *     cheap USER_SYNC touches on Redis); CLEAR_USER_SYNC at shutdown;
 *   - caches: access tokens (and whatever capabilities registered) are
 *     invalidated everywhere through the `caches` stream;
 *   - metrics sources.
 * Also wired without worker mode: metrics and the process-local caches.
 */
import type { Services } from '../app/services.js';
import type { PresenceState } from '../streams/sync-sources.js';
import { streamWriters } from './role.js';
import { isReplicating, makeRoutedCall } from './runtime.js';
import { StreamReplicator, type TypingReplicaHooks } from './stream-replication.js';

/** Typing positions after a writer restart start this far above the last recorded one. */
const TYPING_RESTART_MARGIN = 1000;

export async function wireReplication(services: Services): Promise<void> {
  const rt = services.workers;
  if (!rt) return;
  rt.metrics.setSources({ instanceName: rt.role.instanceName, streams: services.streams, waiters: () => services.syncNotifier?.waitingCount ?? 0 });
  const caches = rt.caches;
  const auth = services.tokenAuthenticator;
  if (auth) {
    caches.register('access_tokens', (hashes) => auth.invalidate(hashes, false));
    // The authenticator already dropped them here: only tell the others.
    auth.onInvalidated.push((hashes) => caches.publish?.('access_tokens', hashes));
  }
  const transport = rt.transport;
  if (!transport || !isReplicating(services)) return;

  const me = rt.role.instanceName;
  const writers = streamWriters(services.config);
  const typingWriter = writers.typing[0]!;
  const typing = services.typingReader;
  const typingGen = services.streams.typing;

  if (typing && typingGen && typingWriter === me) {
    // Typing lives in memory: after a restart, number above what readers saw.
    const row = await services.db.queryOne<{ stream_id: number | string }>(
      'SELECT stream_id FROM stream_positions WHERE stream_name = ? AND instance_name = ?',
      ['typing', me],
    );
    const startedAt = row ? Number(row.stream_id) + TYPING_RESTART_MARGIN : typingGen.getCurrent();
    typingGen.advanceTo(startedAt);
    rt.replication.register(
      'typing_updates',
      (body) => {
        const from = Number(body.from) || 0;
        return { position: typingGen.getCurrent(), startedAt, rows: typing.changesSince(from) };
      },
      { idempotent: false },
    );
  }
  const typingHooks: TypingReplicaHooks | undefined = typing
    ? {
        usersTyping: (roomId) => typing.typingUsers(roomId),
        apply: (roomId, userIds, position) => typing.applyReplicated(roomId, userIds, position),
        roomsWithTyping: () => typing.roomsWithTyping(),
        fetch: (from) => rt.client.call(typingWriter, 'typing_updates', { from }),
      }
    : undefined;

  const replicator = new StreamReplicator({
    instanceName: me,
    writersOf: (s) => writers[s] ?? [],
    streams: services.streams,
    notifier: services.syncNotifier,
    transport,
    readPositions: () => services.db.query('SELECT stream_name, instance_name, stream_id FROM stream_positions'),
    persistPosition: async (stream, instance, position) => {
      await services.db.execute(
        `INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES (?, ?, ?)
         ON CONFLICT (stream_name, instance_name) DO UPDATE SET stream_id = excluded.stream_id
         WHERE stream_positions.stream_id < excluded.stream_id`,
        [stream, instance, position],
      );
    },
    typing: typingHooks,
    caches,
    logger: services.logger,
    metrics: rt.metrics.replication,
  });
  caches.publish = (name, keys) => replicator.publishCacheInvalidation(name, keys);
  services.syncNotifier.onBehind = () => replicator.requestCatchUp('token-ahead', true);
  // Then quiet reads (shared by every request arriving meanwhile): no wake-ups, no cache clearing.
  services.syncNotifier.onStillBehind = () => void replicator.freshPositions();
  rt.replicator = replicator;
  await replicator.start();
  services.onShutdown.unshift(() => replicator.stop());

  wirePresence(services, me, writers.presence[0]!);
}

type PresenceOp =
  | { op: 'set'; userId: string; state: PresenceState; statusMsg?: string }
  | { op: 'sync'; userId: string; state?: PresenceState }
  | { op: 'active'; userId: string };

/** Presence changes and /sync activity on any process reach the presence writer. */
function wirePresence(services: Services, me: string, presenceWriter: string): void {
  const rt = services.workers!;
  const presence = services.live?.presence;
  if (!presence) return;
  const local = {
    setPresence: presence.setPresence.bind(presence),
    userSyncing: presence.userSyncing.bind(presence),
    bumpActive: presence.bumpActive.bind(presence),
  };
  // The answer carries the presence positions (read-after-write, like makeWriter's):
  // the /sync that asked sees the presence it just set.
  const routed = makeRoutedCall<PresenceOp, { positions?: Record<string, number> }>(services, {
    endpoint: 'presence_op',
    servesRemote: presenceWriter === me,
    target: () => presenceWriter,
    local: async (q) => {
      if (q.op === 'set') await local.setPresence(q.userId, q.state, q.statusMsg);
      else if (q.op === 'sync') await local.userSyncing(q.userId, q.state);
      else await local.bumpActive(q.userId);
      const positions = await rt.replicator?.settleWrite('presence');
      return positions ? { positions } : {};
    },
  });
  const call = async (q: PresenceOp): Promise<void> => {
    const res = await routed(q);
    await rt.replicator?.applyWriteReply('presence', res?.positions);
  };
  const transport = rt.transport!;
  if (presenceWriter === me) {
    // Another process's /sync keeps the user from timing out.
    transport.on('command', (cmd) => {
      if (cmd.name === 'USER_SYNC' && cmd.syncing) presence.touch(cmd.userId, cmd.lastSyncMs);
    });
    return;
  }
  // The first sync (or a change of set_presence) goes over HTTP, so the
  // state is written before the sync answers; later ones only touch.
  const refreshMs = Math.max(1000, Math.min(30_000, Math.floor(presence.opts.offlineMs / 3)));
  // The touches only keep the user from timing out (offlineMs, a minute by
  // default): one every few seconds is plenty. Not one per /sync: a message
  // fanned out to many users would cost the presence writer a Redis message
  // per long-poll that comes back.
  const touchMs = Math.max(250, Math.min(5_000, Math.floor(presence.opts.offlineMs / 12)));
  const recent = new Map<string, { at: number; state: PresenceState; touched: number }>();
  presence.setPresence = async (userId, state, statusMsg) => {
    recent.delete(userId);
    await call({ op: 'set', userId, state, ...(statusMsg !== undefined ? { statusMsg } : {}) });
  };
  presence.bumpActive = async (userId) => {
    await call({ op: 'active', userId });
  };
  presence.userSyncing = async (userId, setPresence) => {
    if (!presence.opts.enabled) return;
    const wanted = setPresence ?? 'online';
    if (wanted === 'offline') return;
    const now = Date.now();
    const r = recent.get(userId);
    if (r && r.state === wanted && now - r.at < refreshMs) {
      if (now - r.touched >= touchMs) {
        r.touched = now;
        void transport.sendTo(presenceWriter, { name: 'USER_SYNC', instance: me, userId, syncing: true, lastSyncMs: now });
      }
      return;
    }
    await call({ op: 'sync', userId, ...(setPresence ? { state: setPresence } : {}) });
    if (recent.size > 100_000) recent.clear();
    recent.set(userId, { at: now, state: wanted, touched: now });
  };
  // This process's syncing users are gone with it (the writer's timeouts take over).
  services.onShutdown.unshift(async () => {
    await transport.sendTo(presenceWriter, { name: 'CLEAR_USER_SYNC', instance: me });
  });
}
