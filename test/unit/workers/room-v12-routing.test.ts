/**
 * Worker routing with the server-less room ids of room version 12: event
 * persisters are chosen by hashing the room id, and nginx's event-sending
 * affinity reads the room id out of the URI.
 */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { generateNginxConfig } from '../../../src/workers/nginx.js';
import { eventsWriterForRoom } from '../../../src/workers/role.js';
import { SHARED, WORKERS } from './fixtures.js';

/** Some v12-shaped room ids (`!` + 43 URL-safe base64 characters). */
const rooms = Array.from({ length: 40 }, (_, i) => '!' + Buffer.alloc(32, i * 7 + 1).toString('base64url'));

describe('room version 12 room ids in worker routing', () => {
  it('shard stably over every events writer', () => {
    for (const r of rooms) expect(r).toMatch(/^![A-Za-z0-9_-]{43}$/);
    const cfg = { stream_writers: { events: ['p1', 'p2'] } } as any;
    const shards = rooms.map((r) => eventsWriterForRoom(cfg, r));
    expect(rooms.map((r) => eventsWriterForRoom(cfg, r))).toEqual(shards);
    expect(new Set(shards)).toEqual(new Set(['p1', 'p2']));
  });

  it("nginx's room id map captures the whole id from the URI", () => {
    const shared = configSchema.parse(SHARED);
    const workers = Object.entries(WORKERS).map(([path, w]) => ({ path, config: configSchema.parse({ ...SHARED, ...w }) }));
    const conf = generateNginxConfig(shared, workers);
    const map = /map \$uri \$myelin_room_id \{([^}]*)\}/.exec(conf)?.[1];
    expect(map).toBeDefined();
    const patterns = [...map!.matchAll(/"~([^"]+)" \$1;/g)].map((m) => new RegExp(m[1]!));
    expect(patterns.length).toBeGreaterThan(0);
    for (const r of rooms.slice(0, 5)) {
      const id = encodeURIComponent(r);
      const uri = `/_matrix/client/v3/rooms/${id}/send/m.room.message/txn1`;
      const hit = patterns.map((p) => p.exec(uri)?.[1]).find((x) => x !== undefined);
      expect(hit).toBe(id);
      expect(patterns.map((p) => p.exec(`/_matrix/client/v3/join/${id}`)?.[1]).find((x) => x !== undefined)).toBe(id);
    }
  });
});
