/**
 * Builds the sync capability: the notifier (services.notifier), the typing
 * stream and writer (services.typing, services.streams.typing) and the /sync
 * service (services.sync) with its per-user membership cache. The other
 * streams' generators are registered by their owners; the notifier reads
 * them at call time.
 */
import { MembershipCache } from '../services/sync/membership-cache.js';
import { RecentEvents } from '../services/sync/recent-events.js';
import { SyncService } from '../services/sync/sync-service.js';
import { LegacyEventsService } from '../services/sync/legacy-service.js';
import { TypingService, type TypingWriter } from '../services/typing/typing-service.js';
import { SyncStore } from '../storage/sync/sync-store.js';
import { StreamIdGenerator } from '../streams/id-generator.js';
import { Notifier } from '../streams/notifier.js';
import { caches } from '../workers/caches.js';
import { makeWriter } from '../workers/runtime.js';
import type { Services } from './services.js';

export async function wireSync(services: Services): Promise<void> {
  const notifier = new Notifier(services.streams, services.shutdownSignal);
  services.notifier = notifier;
  services.syncNotifier = notifier;

  // Typing lives in memory: positions restart at 0 with the process (tokens
  // ahead of it are clamped by /sync, see SyncService.parseSince).
  const typingStream = new StreamIdGenerator(0);
  services.streams.typing = typingStream;
  const typing = new TypingService(typingStream, notifier);
  services.onShutdown.push(() => typing.close());
  const setTyping = makeWriter<{ roomId: string; userId: string; typing: boolean; timeoutMs?: number }, Record<string, never>>(services, {
    stream: 'typing',
    endpoint: 'typing_set',
    local: async (r) => {
      await typing.setTyping(r.roomId, r.userId, r.typing, r.timeoutMs);
      return {};
    },
  });
  const writer: TypingWriter = {
    setTyping: async (roomId, userId, isTyping, timeoutMs) => {
      await setTyping({ roomId, userId, typing: isTyping, timeoutMs });
    },
  };
  services.typing = writer;
  services.typingReader = typing;

  const store = new SyncStore(services.db);
  services.syncStore = store;
  // Exact by itself (a position-checked probe, see membership-cache.ts);
  // invalidations only drop entries early: events stream changes naming
  // users (membership events, local or replicated), the `sync_memberships`
  // cache of the caches stream, and everything when a process may have
  // missed rows (caches registry clearAll).
  const position = () => services.streams.events?.getCurrent() ?? 0;
  // Every writer's position (several event persisters: streams/tokens.ts).
  const writerPositions = () => services.streams.events?.getPosition() ?? { min: 0 };
  // One read per events stream advance, shared by every response (recent-events.ts).
  const recent = new RecentEvents(store, writerPositions);
  const memberships = new MembershipCache(
    {
      currentMemberships: (userId) => store.currentMemberships(userId),
      membershipChangedAfter: async (userId, after, upTo) =>
        (await recent.membershipChanged(userId, after, upTo)) ?? (await store.membershipChangedAfter(userId, after)),
    },
    position,
  );
  notifier.observers.push((c) => {
    if (c.stream === 'events' && c.users?.length) memberships.invalidate(c.users);
  });
  caches(services).register('sync_memberships', (users) => memberships.invalidate(users), () => memberships.clear());
  // Shared reads are keyed by every writer's position (a writer moving alone, e.g. with a redaction, changes the key).
  const positionKey = (): number | string => {
    const p = writerPositions();
    return p.writers ? JSON.stringify(p) : p.min;
  };
  services.sync = new SyncService(services, store, notifier, typing, memberships, recent, positionKey);
  services.legacyEvents = new LegacyEventsService(services, store, notifier, services.sync);
}
