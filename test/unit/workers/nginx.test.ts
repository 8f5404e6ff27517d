import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { proxyConfig } from '../../../src/cli/proxy-config.js';
import { configSchema } from '../../../src/config/schema.js';
import { samplePath } from '../../../src/workers/route-filter.js';
import { generateNginxConfig } from '../../../src/workers/nginx.js';
import { ROUTING_TABLE, type RoutingEntry } from '../../../src/workers/routing-table.js';
import { SHARED, WORKERS } from './fixtures.js';

const shared = configSchema.parse(SHARED);
const workers = Object.entries(WORKERS).map(([path, w]) => ({ path, config: configSchema.parse({ ...SHARED, ...w }) }));

interface Loc {
  pattern: string;
  target: string;
}

/** The regex locations of a generated config, in order, with their proxy_pass upstream. */
function regexLocations(conf: string): Loc[] {
  const out: Loc[] = [];
  const re = /location ~ "([^"]+)" \{\s*proxy_pass http:\/\/([^;]+);/g;
  for (let m = re.exec(conf); m; m = re.exec(conf)) out.push({ pattern: m[1]!, target: m[2]! });
  return out;
}

/** nginx's choice for a path: the first regex location that matches, else `location /` (main). */
function route(conf: string, path: string): string {
  return regexLocations(conf).find((l) => new RegExp(l.pattern).test(path))?.target ?? 'myelin_main';
}

/** A concrete path matching a routing-table regex. */
function exampleFor(e: RoutingEntry): string {
  return e.pattern
    .replace(/^\^/, '')
    .replace(/\$$/, '')
    .replace(/\((?:api\/v1\|)?r0\|v3(?:\|unstable)?\)/, 'v3')
    .replace(/\(v1\|v2\)/, 'v2')
    .replace(/\(join\|invite\|leave\|ban\|unban\|kick\)/, 'join')
    .replace(/\[\^\/\]\+/g, '!room:example.org')
    .replace(/\.\*/g, '!room:example.org');
}

describe('nginx generator', () => {
  const conf = generateNginxConfig(shared, workers, { pools: { initial_sync: ['generic_worker2'] } });

  it('compiles the routing regexes with PCRE JIT in a standalone nginx.conf (main context), and says so otherwise', () => {
    const full = generateNginxConfig(shared, workers, { standalone: { prefix: '/srv/nginx' } });
    const main = full.slice(0, full.indexOf('http {'));
    expect(main).toMatch(/^pcre_jit on;$/m);
    expect(full.match(/pcre_jit on;/g)).toHaveLength(1);
    // The http-context output cannot hold the directive (nginx refuses it there): only a hint.
    expect(conf).not.toMatch(/^\s*pcre_jit/m);
    expect(conf).toMatch(/^# .*`pcre_jit on;` in nginx.conf's main context/m);
  });

  it('has a location for every routing-table pattern that leaves the main process, and none for others', () => {
    const patterns = regexLocations(conf).map((l) => l.pattern);
    for (const e of ROUTING_TABLE) {
      if (e.category === 'sso' || e.owner.kind === 'media_repository') {
        expect(patterns).not.toContain(e.pattern); // SSO stays on one process; no media workers here
      } else {
        expect(patterns, e.pattern).toContain(e.pattern);
      }
    }
    expect(new Set(patterns).size).toBe(patterns.length);
  });

  it('routes each routing-table entry where its category says', () => {
    const expected: Record<string, string> = {
      sync: 'myelin_sync',
      federation: 'myelin_federation',
      federation_transaction: 'myelin_federation_inbound',
      client: 'myelin_client',
      encryption: 'myelin_client',
      login: 'myelin_login',
      event_sending: 'myelin_event_sending',
      pagination: 'myelin_pagination',
      push_rules_read: '$myelin_pushrules_upstream',
      user_directory: 'myelin_client',
      sso: 'myelin_main',
      typing: 'myelin_writer_stream_writer',
      to_device: 'myelin_writer_stream_writer',
      account_data: 'myelin_writer_stream_writer',
      receipts: 'myelin_writer_stream_writer',
      presence: 'myelin_writer_stream_writer',
      media: 'myelin_main',
      media_admin: 'myelin_main',
    };
    for (const e of ROUTING_TABLE) {
      const path = exampleFor(e);
      expect(new RegExp(e.pattern).test(path), `${path} ~ ${e.pattern}`).toBe(true);
      let want = expected[e.category]!;
      if (e.category === 'sync') want = /initialSync/.test(e.pattern) ? 'myelin_initial_sync' : /sync\$$/.test(e.pattern) ? '$myelin_sync_upstream' : 'myelin_sync';
      expect(route(conf, path), `${e.category} ${path}`).toBe(want);
    }
  });

  it('agrees with what each worker mounts (samplePath of real route shapes)', () => {
    expect(route(conf, samplePath('/_matrix/client/v3/rooms/:roomId/typing/:userId'))).toBe('myelin_writer_stream_writer');
    expect(route(conf, samplePath('/_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId'))).toBe('myelin_event_sending');
    expect(route(conf, samplePath('/_matrix/client/v3/user/:userId/account_data/:type'))).toBe('myelin_writer_stream_writer');
    expect(route(conf, samplePath('/_matrix/client/v3/capabilities'))).toBe('myelin_main');
  });

  it('balances as documented and never exposes replication', () => {
    expect(conf).toMatch(/upstream myelin_sync \{\s*hash \$myelin_sync_user consistent;\s*server 127\.0\.0\.1:8081;\s*server 127\.0\.0\.1:8082;/);
    expect(conf).toMatch(/upstream myelin_initial_sync \{\s*hash \$myelin_sync_user consistent;\s*server 127\.0\.0\.1:8082;\s*keepalive/);
    expect(conf).toMatch(/upstream myelin_federation_inbound \{\s*hash \$remote_addr consistent;/);
    expect(conf).toMatch(/upstream myelin_event_sending \{(\s*#[^\n]*)*\s*hash \$myelin_room_id;\s*server 127\.0\.0\.1:8038;\s*server 127\.0\.0\.1:8039;/);
    expect(conf).toMatch(/upstream myelin_writer_stream_writer \{\s*server 127\.0\.0\.1:8037;/);
    expect(conf).toMatch(/"~\*\^Bearer \+syt_\(\[\^_\]\+\)_" \$1;/);
    expect(conf).toMatch(/map \$arg_since \$myelin_sync_upstream/);
    for (const port of [9093, 8034, 8035, 8036]) expect(conf).not.toContain(`:${port};`);
    expect(conf).toMatch(/location \^~ \/_synapse\/replication\/ \{[^}]*return 404/);
  });

  it('refuses a typing writer without a client listener', () => {
    const bad = workers.map((w) => (w.config.worker_name === 'stream_writer' ? { ...w, config: { ...w.config, worker_listeners: [w.config.worker_listeners![0]!] } } : w));
    expect(() => generateNginxConfig(shared, bad)).toThrow(/stream_writers\.typing: writer "stream_writer" has no http listener with the client resource/);
  });
});

/** The example deployment (events writers in `order`), its persisters' client listeners (8038, 8039) kept or not. */
function example(order = ['event_persister1', 'event_persister2'], persisterClients = true) {
  const s = configSchema.parse({ ...SHARED, stream_writers: { ...SHARED.stream_writers, events: order } });
  const ws = Object.entries(WORKERS).map(([path, w]) => {
    const drop = !persisterClients && (w.worker_name as string).startsWith('event_persister');
    const extra = drop ? { worker_listeners: (w.worker_listeners as { resources: { names: string[] }[] }[]).filter((l) => l.resources[0]!.names.includes('replication')) } : {};
    return { path, config: configSchema.parse({ ...SHARED, ...w, ...extra }) };
  });
  return { shared: s, workers: ws };
}

/** The servers of an upstream block, in order, and its balancing line. */
function upstream(conf: string, name: string): { balance: string | undefined; servers: string[]; text: string } {
  const m = new RegExp(`upstream ${name} \\{([^}]*)\\}`).exec(conf);
  if (!m) throw new Error(`no upstream ${name}`);
  const text = m[1]!;
  return { text, balance: /^\s*(hash [^;]*);/m.exec(text)?.[1], servers: [...text.matchAll(/^\s*server ([^;]+);/gm)].map((x) => x[1]!) };
}

describe('nginx generator: event sending straight to the room persister', () => {
  it('lists the persisters in stream_writers.events order, hashed like roomShardFor (not consistent), with a comment why', () => {
    const conf = generateNginxConfig(shared, workers);
    const u = upstream(conf, 'myelin_event_sending');
    expect(u.balance).toBe('hash $myelin_room_id');
    expect(u.servers).toEqual(['127.0.0.1:8038', '127.0.0.1:8039']);
    expect(u.text).toMatch(/# .*not `consistent`/);
    expect(route(conf, '/_matrix/client/v3/rooms/!r:example.org/send/m.room.message/t1')).toBe('myelin_event_sending');
    // The order is the writers' order, not the worker files'.
    const rev = example(['event_persister2', 'event_persister1']);
    expect(upstream(generateNginxConfig(rev.shared, rev.workers), 'myelin_event_sending').servers).toEqual(['127.0.0.1:8039', '127.0.0.1:8038']);
    // The other pools are unchanged: every generic worker with a client listener (the persisters too).
    const sync = upstream(conf, 'myelin_sync');
    expect(sync.balance).toBe('hash $myelin_sync_user consistent');
    expect(sync.servers).toEqual(['127.0.0.1:8081', '127.0.0.1:8082', '127.0.0.1:8038', '127.0.0.1:8039', '127.0.0.1:8037']);
    expect(upstream(conf, 'myelin_pagination').balance).toBe('hash $myelin_room_id consistent');
    // Replication listeners stay unexposed.
    for (const port of [9093, 8034, 8035, 8036]) expect(conf).not.toContain(`:${port};`);
  });

  it('keeps the consistent-hashed generic pool otherwise', () => {
    // No persister has a client listener.
    const none = example(undefined, false);
    const plain = upstream(generateNginxConfig(none.shared, none.workers), 'myelin_event_sending');
    expect(plain).toMatchObject({ balance: 'hash $myelin_room_id consistent', servers: ['127.0.0.1:8081', '127.0.0.1:8082', '127.0.0.1:8037'] });
    expect(plain.text).not.toContain('#');
    // Only one of the two has one.
    const half = workers.map((w) => (w.config.worker_name === 'event_persister2' ? none.workers.find((x) => x.config.worker_name === 'event_persister2')! : w));
    expect(upstream(generateNginxConfig(shared, half), 'myelin_event_sending')).toMatchObject({
      balance: 'hash $myelin_room_id consistent',
      servers: ['127.0.0.1:8081', '127.0.0.1:8082', '127.0.0.1:8038', '127.0.0.1:8037'],
    });
    // The main process writes events (alone, or among the persisters).
    for (const events of [undefined, ['event_persister1', 'master']]) {
      const s = configSchema.parse({ ...SHARED, stream_writers: { ...SHARED.stream_writers, events } });
      expect(upstream(generateNginxConfig(s, workers), 'myelin_event_sending').balance).toBe('hash $myelin_room_id consistent');
    }
    // A persister that is not a generic worker does not serve event sending.
    const odd = workers.map((w) => (w.config.worker_name === 'event_persister1' ? { ...w, config: { ...w.config, worker_app: 'synapse.app.pusher' } } : w));
    expect(upstream(generateNginxConfig(shared, odd), 'myelin_event_sending').balance).toBe('hash $myelin_room_id consistent');
    // A persister listening on a host name: nginx would make a server per address of it (and pick otherwise).
    const named = workers.map((w) =>
      w.config.worker_name === 'event_persister1'
        ? {
            ...w,
            config: {
              ...w.config,
              worker_listeners: w.config.worker_listeners!.map((l) =>
                l.resources.some((r) => r.names.includes('client')) ? { ...l, bind_addresses: ['localhost'] } : l,
              ),
            },
          }
        : w,
    );
    expect(upstream(generateNginxConfig(shared, named), 'myelin_event_sending').balance).toBe('hash $myelin_room_id consistent');
    // An IPv6 address is an address.
    const v6 = named.map((w) =>
      w.config.worker_name === 'event_persister1'
        ? { ...w, config: { ...w.config, worker_listeners: w.config.worker_listeners!.map((l) => (l.bind_addresses?.[0] === 'localhost' ? { ...l, bind_addresses: ['::1'] } : l)) } }
        : w,
    );
    expect(upstream(generateNginxConfig(shared, v6), 'myelin_event_sending')).toMatchObject({ balance: 'hash $myelin_room_id', servers: ['[::1]:8038', '127.0.0.1:8039'] });
    // An explicit event_sending pool wins.
    expect(upstream(generateNginxConfig(shared, workers, { pools: { event_sending: ['generic_worker2'] } }), 'myelin_event_sending')).toMatchObject({
      balance: 'hash $myelin_room_id consistent',
      servers: ['127.0.0.1:8082'],
    });
  });
});

const nginx = spawnSync('nginx', ['-v']).error ? undefined : 'nginx';
if (!nginx) console.warn('nginx -t test skipped: nginx is not installed (apt-get install -y nginx)');

describe.skipIf(!nginx)('nginx accepts the generated configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-nginx-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('nginx -t passes for proxy-config output', () => {
    writeFileSync(join(dir, 'homeserver.yaml'), stringify(SHARED));
    mkdirSync(join(dir, 'workers'));
    for (const [f, w] of Object.entries(WORKERS)) writeFileSync(join(dir, 'workers', f), stringify(w));
    const text = proxyConfig(['--nginx', '-c', join(dir, 'homeserver.yaml'), '-a', join(dir, 'workers'), '--standalone', dir, '--listen', '127.0.0.1:18008', '--pool', 'initial_sync=generic_worker2', '-o', join(dir, 'nginx.conf')]);
    expect(text).toContain('upstream myelin_main');
    const r = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/syntax is ok/);
    expect(r.status, r.stderr).toBe(0);
  });
});
