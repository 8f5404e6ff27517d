import { describe, expect, it } from 'vitest';
import { crc32Table } from '../../../src/util/crc32.js';
import {
  eventsWriterForRoom,
  parseWorkerApp,
  resolveRole,
  roomShardFor,
  sendsFederationTo,
  sendsPushesFor,
  shardFor,
  streamWriters,
  type RoleConfig,
} from '../../../src/workers/role.js';

const base = (extra: Partial<RoleConfig> = {}): RoleConfig => ({ stream_writers: {}, run_background_tasks_on: 'master', ...extra }) as RoleConfig;

describe('worker_app names', () => {
  it('accepts generic, historical, prefixed and bare names', () => {
    expect(parseWorkerApp(undefined)).toBe('main');
    expect(parseWorkerApp('synapse.app.generic_worker')).toBe('generic_worker');
    expect(parseWorkerApp('generic_worker')).toBe('generic_worker');
    for (const h of ['client_reader', 'event_creator', 'federation_reader', 'frontend_proxy', 'synchrotron']) {
      expect(parseWorkerApp(`synapse.app.${h}`)).toBe('generic_worker');
      expect(parseWorkerApp(h)).toBe('generic_worker');
    }
    for (const a of ['pusher', 'federation_sender', 'media_repository', 'appservice', 'user_dir'] as const) {
      expect(parseWorkerApp(`synapse.app.${a}`)).toBe(a);
    }
    expect(parseWorkerApp('synapse.app.homeserver')).toBe('main');
    expect(parseWorkerApp('synapse.app.nonsense')).toBeUndefined();
  });
});

describe('resolveRole', () => {
  it('main process defaults: writes every stream, runs every duty', () => {
    const r = resolveRole(base());
    expect(r.isMain).toBe(true);
    expect(r.instanceName).toBe('master');
    expect([...r.writes].sort()).toEqual(['account_data', 'device_lists', 'events', 'presence', 'push_rules', 'receipts', 'to_device', 'typing']);
    expect(r).toMatchObject({ runsBackgroundTasks: true, startsPushers: true, sendsFederation: true, servesMedia: true, runsMediaBackgroundJobs: true, updatesUserDirectory: true, notifiesAppservices: true });
  });

  it('moves streams and duties to named workers', () => {
    const cfg = base({
      stream_writers: { events: ['p1', 'p2'], typing: ['sw'], to_device: ['sw'] },
      run_background_tasks_on: 'bg',
      update_user_directory_from_worker: 'bg',
      notify_appservices_from_worker: 'bg',
    } as any);
    const main = resolveRole(cfg);
    expect(main.writes.has('events')).toBe(false);
    expect(main.writes.has('typing')).toBe(false);
    expect(main.writes.has('receipts')).toBe(true);
    expect(main.runsBackgroundTasks).toBe(false);
    expect(main.updatesUserDirectory).toBe(false);
    expect(main.notifiesAppservices).toBe(false);
    const bg = resolveRole({ ...cfg, worker_app: 'synapse.app.generic_worker', worker_name: 'bg' });
    expect(bg).toMatchObject({ isMain: false, app: 'generic_worker', runsBackgroundTasks: true, updatesUserDirectory: true, notifiesAppservices: true, startsPushers: false, sendsFederation: false, servesMedia: false });
    const p2 = resolveRole({ ...cfg, worker_app: 'synapse.app.event_creator', worker_name: 'p2' });
    expect([...p2.writes]).toEqual(['events']);
    const sw = resolveRole({ ...cfg, worker_app: 'generic_worker', worker_name: 'sw' });
    expect([...sw.writes].sort()).toEqual(['to_device', 'typing']);
  });

  it('pushers: start_pushers false on main, pusher app takes over; pusher_instances shards', () => {
    const cfg = base({ start_pushers: false });
    expect(resolveRole(cfg).startsPushers).toBe(false);
    expect(resolveRole({ ...cfg, worker_app: 'synapse.app.pusher', worker_name: 'pusher1' }).startsPushers).toBe(true);
    const sharded = base({ start_pushers: false, pusher_instances: ['pusher1', 'pusher2'] });
    const p1 = resolveRole({ ...sharded, worker_app: 'synapse.app.pusher', worker_name: 'pusher1' });
    const p2 = resolveRole({ ...sharded, worker_app: 'synapse.app.pusher', worker_name: 'pusher2' });
    const p3 = resolveRole({ ...sharded, worker_app: 'synapse.app.pusher', worker_name: 'pusher3' });
    expect(p3.startsPushers).toBe(false);
    for (const u of ['@a:x', '@b:x', '@c:x', '@d:x']) {
      expect(Number(sendsPushesFor(p1, sharded, u)) + Number(sendsPushesFor(p2, sharded, u))).toBe(1);
    }
    // pusher_instances without master moves pushing off main even with start_pushers unset
    expect(resolveRole(base({ pusher_instances: ['pusher1'] })).startsPushers).toBe(false);
  });

  it('federation senders shard by destination', () => {
    const cfg = base({ send_federation: false, federation_sender_instances: ['fs1', 'fs2'] });
    expect(resolveRole(cfg).sendsFederation).toBe(false);
    const fs1 = resolveRole({ ...cfg, worker_app: 'synapse.app.federation_sender', worker_name: 'fs1' });
    const fs2 = resolveRole({ ...cfg, worker_app: 'synapse.app.federation_sender', worker_name: 'fs2' });
    // (Keys that differ in one byte only, like a.org ... h.org, may all share a shard: CRC-32 is linear.)
    const dests = Array.from({ length: 20 }, (_, i) => `server${i}.example.org`);
    for (const d of dests) expect(Number(sendsFederationTo(fs1, cfg, d)) + Number(sendsFederationTo(fs2, cfg, d))).toBe(1);
    expect(dests.some((d) => sendsFederationTo(fs1, cfg, d))).toBe(true);
    expect(dests.some((d) => sendsFederationTo(fs2, cfg, d))).toBe(true);
  });

  it('media repository: enable_media_repo false moves it; one instance runs background jobs', () => {
    const cfg = base({ enable_media_repo: false, media_instance_running_background_jobs: 'media1' });
    expect(resolveRole(cfg)).toMatchObject({ servesMedia: false, runsMediaBackgroundJobs: false });
    expect(resolveRole({ ...cfg, worker_app: 'synapse.app.media_repository', worker_name: 'media1' })).toMatchObject({ servesMedia: true, runsMediaBackgroundJobs: true });
    expect(resolveRole({ ...cfg, worker_app: 'synapse.app.media_repository', worker_name: 'media2' })).toMatchObject({ servesMedia: true, runsMediaBackgroundJobs: false });
  });

  it('legacy user_dir and appservice apps take over when main is told false', () => {
    const cfg = base({ update_user_directory: false, notify_appservices: false });
    expect(resolveRole(cfg)).toMatchObject({ updatesUserDirectory: false, notifiesAppservices: false });
    expect(resolveRole({ ...cfg, worker_app: 'synapse.app.user_dir', worker_name: 'ud' }).updatesUserDirectory).toBe(true);
    expect(resolveRole({ ...cfg, worker_app: 'synapse.app.appservice', worker_name: 'as' }).notifiesAppservices).toBe(true);
    // without the false on main, the legacy app does not (main keeps it)
    expect(resolveRole(base({ worker_app: 'synapse.app.user_dir', worker_name: 'ud' })).updatesUserDirectory).toBe(false);
  });

  it('"main" and "master" both name the main process', () => {
    const cfg = base({ stream_writers: { typing: 'main' } as any, run_background_tasks_on: 'main' });
    expect(streamWriters(cfg).typing).toEqual(['master']);
    expect(resolveRole(cfg).runsBackgroundTasks).toBe(true);
  });
});

describe('events sharding', () => {
  it('is stable and spreads rooms over the writers', () => {
    const cfg = { stream_writers: { events: ['p1', 'p2'] } } as any;
    const rooms = Array.from({ length: 40 }, (_, i) => `!room${i}:example.org`);
    const shards = rooms.map((r) => eventsWriterForRoom(cfg, r));
    expect(rooms.map((r) => eventsWriterForRoom(cfg, r))).toEqual(shards);
    expect(new Set(shards)).toEqual(new Set(['p1', 'p2']));
    expect(eventsWriterForRoom({ stream_writers: {} } as any, '!x:y')).toBe('master');
  });

  /** CRC-32 (IEEE, reflected 0xEDB88320), bit by bit: independent of role.ts's. */
  const crc32Bitwise = (s: string): number => {
    let c = 0xffffffff;
    for (const b of Buffer.from(s, 'utf8')) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  /** nginx's first pick of `hash KEY;` over n equal servers (ngx_http_upstream_hash_module). */
  const nginxPick = (key: string, n: number) => ((crc32Bitwise(key) >>> 16) & 0x7fff) % n;

  it('roomShardFor picks as nginx `hash $key;` does: ((crc32(key) >>> 16) & 0x7fff) mod n', () => {
    expect(crc32Bitwise('123456789')).toBe(0xcbf43926); // the CRC-32 check value
    const keys = ['!abc:example.org', '!x:y', '!OGEhHVWSdvArJzumhm:matrix.org', '@alice:example.org', 'remote.example.com', '!ünïcødé:example.org', ''];
    for (const key of keys) {
      for (const n of [2, 3, 5, 7]) {
        const list = Array.from({ length: n }, (_, i) => `w${i}`);
        expect(roomShardFor(key, list), `${key} over ${n}`).toBe(`w${nginxPick(key, n)}`);
      }
    }
    // Fixed answers: CRC-32 0x45639ff0 -> 17763, 0x6f58394e -> 28504, 0x555ab14a -> 21850.
    expect(crc32Bitwise('!abc:example.org')).toBe(0x45639ff0);
    expect(['!abc:example.org', '!x:y', '@alice:example.org'].map((k) => roomShardFor(k, ['w0', 'w1', 'w2', 'w3', 'w4']))).toEqual(['w3', 'w4', 'w0']);
    expect(['!abc:example.org', '!x:y', '@alice:example.org'].map((k) => roomShardFor(k, ['w0', 'w1', 'w2']))).toEqual(['w0', 'w1', 'w1']);
    expect(roomShardFor('!only:example.org', ['solo'])).toBe('solo');
    expect(() => roomShardFor('!x:y', [])).toThrow(/no writers/);
  });

  it('shardFor (pushers, federation senders) is SHA-256 mod n: keys that differ in one character spread', async () => {
    const { createHash } = await import('node:crypto');
    const key = '!abc:example.org';
    const n = createHash('sha256').update(key).digest().readUIntBE(0, 6);
    expect(shardFor(key, ['w0', 'w1', 'w2', 'w3', 'w4'])).toBe(`w${n % 5}`);
    const near = ['a.org', 'b.org', 'c.org', 'd.org', 'e.org', 'f.org', 'g.org', 'h.org'];
    expect(new Set(near.map((k) => shardFor(k, ['w0', 'w1']))).size).toBe(2);
  });

  it('the table-driven CRC-32 (for Node without zlib.crc32) agrees', () => {
    for (const key of ['', '123456789', '!abc:example.org', '!ünïcødé:example.org', 'a'.repeat(300)]) expect(crc32Table(key)).toBe(crc32Bitwise(key));
  });
});
