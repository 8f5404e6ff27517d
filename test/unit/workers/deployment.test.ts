import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { instanceLocation, workerDeploymentProblems, workerSetProblems } from '../../../src/config/workers.js';

const PG = { name: 'psycopg2', args: { database: 'synapse' } };
const REPL_LISTENER = { port: 9093, bind_address: '127.0.0.1', type: 'http', resources: [{ names: ['replication'] }] };
/** A valid shared config with one event persister. */
const shared = (extra: Record<string, unknown> = {}) => ({
  server_name: 'example.org',
  database: PG,
  redis: { enabled: true },
  listeners: [{ port: 8008, type: 'http', resources: [{ names: ['client', 'federation'] }] }, REPL_LISTENER],
  instance_map: { main: { host: '127.0.0.1', port: 9093 }, persister1: { host: '127.0.0.1', port: 8034 } },
  stream_writers: { events: 'persister1' },
  ...extra,
});
const worker = (extra: Record<string, unknown> = {}) => ({
  worker_app: 'synapse.app.generic_worker',
  worker_name: 'generic1',
  worker_listeners: [{ port: 8083, type: 'http', resources: [{ names: ['client', 'federation'] }] }],
  ...extra,
});
const parse = (raw: Record<string, unknown>) => configSchema.parse(raw);
const problems = (raw: Record<string, unknown>) => workerDeploymentProblems(parse(raw));

describe('worker deployment validation', () => {
  it('accepts a valid deployment and a plain SQLite monolith', () => {
    expect(problems(shared())).toEqual([]);
    expect(problems({ ...shared(), ...worker() })).toEqual([]);
    expect(problems({ server_name: 'example.org' })).toEqual([]);
  });

  it('refuses workers on SQLite', () => {
    const p = problems({ ...shared({ database: { name: 'sqlite3', args: { database: 'x.db' } } }), ...worker() });
    expect(p.join('\n')).toMatch(/^database: workers need PostgreSQL/m);
    // a non-main stream writer alone makes it a worker deployment
    expect(problems(shared({ database: { name: 'sqlite3', args: { database: 'x.db' } } })).join('\n')).toMatch(/database: workers need PostgreSQL/);
  });

  it('refuses workers without Redis', () => {
    expect(problems({ ...shared({ redis: { enabled: false } }), ...worker() })).toContainEqual(expect.stringMatching(/^redis\.enabled: must be true/));
    expect(problems(shared({ redis: undefined }))).toContainEqual(expect.stringMatching(/^redis\.enabled/));
  });

  it('refuses a stream writer that is not in instance_map', () => {
    const p = problems(shared({ stream_writers: { typing: 'sw1' } }));
    expect(p).toContainEqual('stream_writers.typing: writer "sw1" is not in instance_map (add instance_map.sw1 with the host and port of its replication listener)');
  });

  it('refuses several writers for a single-writer stream, allows them for events', () => {
    const im = { main: { host: 'h', port: 1 }, a: { host: 'h', port: 2 }, b: { host: 'h', port: 3 } };
    expect(problems(shared({ instance_map: im, stream_writers: { events: ['a', 'b'] } }))).toEqual([]);
    expect(problems(shared({ instance_map: im, stream_writers: { receipts: ['a', 'b'] } }))).toContainEqual(
      expect.stringMatching(/^stream_writers\.receipts: the receipts stream has a single writer, got 2 \(a, b\)/),
    );
  });

  it('refuses an unknown worker_app, and a worker without worker_name', () => {
    expect(problems({ ...shared(), ...worker({ worker_app: 'synapse.app.frobnicator' }) })[0]).toMatch(/^worker_app: unknown worker application "synapse.app.frobnicator"; expected one of .*synapse.app.generic_worker/);
    expect(problems({ ...shared(), ...worker({ worker_name: undefined }) })).toContainEqual(expect.stringMatching(/^worker_name: required for a worker/));
    expect(problems({ ...shared(), ...worker({ worker_name: 'master' }) })).toContainEqual(expect.stringMatching(/reserved for the main process/));
  });

  it('checks instance_map.main against worker_replication_host/port (both spellings)', () => {
    const noMain = shared({ instance_map: { persister1: { host: '127.0.0.1', port: 8034 } } });
    expect(problems({ ...noMain, ...worker() })).toContainEqual(expect.stringMatching(/^instance_map\.main: a worker needs the main process's replication listener/));
    expect(problems({ ...noMain, ...worker({ worker_replication_host: '127.0.0.1', worker_replication_http_port: 9093 }) })).toEqual([]);
    expect(problems({ ...shared(), ...worker({ worker_replication_host: '127.0.0.1', worker_replication_http_port: 9093 }) })).toEqual([]);
    expect(problems({ ...shared(), ...worker({ worker_replication_host: '127.0.0.1', worker_replication_http_port: 9999 }) })).toContainEqual(
      expect.stringMatching(/^instance_map\.main \(127\.0\.0\.1:9093\) and worker_replication_host\/worker_replication_http_port \(127\.0\.0\.1:9999\) disagree/),
    );
    expect(problems({ ...noMain, ...worker({ worker_replication_host: '127.0.0.1' }) })).toContainEqual('worker_replication_http_port: required together with worker_replication_host');
    const cfg = parse({ ...noMain, ...worker({ worker_replication_host: '10.0.0.1', worker_replication_http_port: 9093 }) });
    expect(instanceLocation(cfg, 'master')).toEqual({ host: '10.0.0.1', port: 9093, tls: false });
    expect(instanceLocation(parse(shared()), 'main')).toEqual({ host: '127.0.0.1', port: 9093, tls: false });
    expect(instanceLocation(parse(shared()), 'persister1')).toEqual({ host: '127.0.0.1', port: 8034, tls: false });
  });

  it('requires a replication listener on the main process and on stream writers', () => {
    expect(problems(shared({ listeners: [] }))).toContainEqual(expect.stringMatching(/^listeners: the main process of a worker deployment needs an http listener with the replication resource/));
    expect(problems({ ...shared(), ...worker({ worker_name: 'persister1' }) })).toContainEqual(expect.stringMatching(/^worker_listeners: worker "persister1" is a stream writer/));
  });

  it('enforces the "set X: false on the main process" interplay', () => {
    expect(problems({ ...shared(), ...worker({ worker_app: 'synapse.app.pusher' }) })).toContainEqual(expect.stringMatching(/^start_pushers: must be false/));
    expect(problems({ ...shared({ start_pushers: false }), ...worker({ worker_app: 'synapse.app.pusher' }) })).toEqual([]);
    expect(problems({ ...shared(), ...worker({ worker_app: 'synapse.app.federation_sender' }) })).toContainEqual(expect.stringMatching(/^send_federation: must be false/));
    expect(problems({ ...shared(), ...worker({ worker_app: 'synapse.app.media_repository' }) })).toContainEqual(expect.stringMatching(/^enable_media_repo: must be false/));
    expect(problems({ ...shared(), ...worker({ worker_app: 'synapse.app.user_dir' }) })).toContainEqual(expect.stringMatching(/^update_user_directory: must be false/));
    expect(problems({ ...shared(), ...worker({ worker_app: 'synapse.app.appservice' }) })).toContainEqual(expect.stringMatching(/^notify_appservices: must be false/));
  });

  it('refuses duplicate worker names across worker files', () => {
    const s = parse(shared());
    const w = (path: string, name: string) => ({ path, config: parse({ ...shared(), ...worker({ worker_name: name }) }) });
    const p = workerSetProblems(s, [w('a.yaml', 'generic1'), w('b.yaml', 'generic1'), { path: 'p.yaml', config: parse({ ...shared(), ...worker({ worker_name: 'persister1', worker_listeners: [REPL_LISTENER] }) }) }]);
    expect(p).toContain('b.yaml: worker_name: "generic1" is already used by a.yaml; worker names must be unique');
    expect(workerSetProblems(s, [w('a.yaml', 'generic1')])).toContain('stream_writers.events: no worker file defines worker_name "persister1"');
  });

  it('stops config loading with the problems listed', () => {
    expect(() => validateConfig({ ...shared({ redis: { enabled: false } }), ...worker() }, '/tmp')).toThrow(ConfigError);
    expect(() => validateConfig({ ...shared({ redis: { enabled: false } }), ...worker() }, '/tmp')).toThrow(/invalid worker deployment:\n {2}redis\.enabled/);
    expect(() => validateConfig({ server_name: 'x', signing_key_path: 'k' }, '/tmp')).not.toThrow();
  });
});

describe('the docs/workers.md example deployment', () => {
  it('is valid as a whole', async () => {
    const { SHARED, WORKERS } = await import('./fixtures.js');
    const s = configSchema.parse(SHARED);
    const ws = Object.entries(WORKERS).map(([path, w]) => ({ path, config: configSchema.parse({ ...SHARED, ...w }) }));
    expect(workerSetProblems(s, ws)).toEqual([]);
  });
});
