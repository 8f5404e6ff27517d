import { describe, expect, it } from 'vitest';
import type { RouteDef } from '../../../src/api/types.js';
import { resolveRole } from '../../../src/workers/role.js';
import { filterRoutesForRole, roleServes, samplePath } from '../../../src/workers/route-filter.js';
import { GENERIC_WORKER_ROUTES, ROUTING_TABLE, STREAM_WRITER_ROUTES } from '../../../src/workers/routing-table.js';

const route = (method: RouteDef['method'], path: string): RouteDef => ({ method, path, handler: () => ({}), options: {} });
const cfg = (extra: Record<string, unknown> = {}) => ({ stream_writers: {}, run_background_tasks_on: 'master', ...extra }) as any;
const generic = (extra: Record<string, unknown> = {}) => resolveRole(cfg({ worker_app: 'synapse.app.generic_worker', worker_name: 'w1', ...extra }));

describe('routing table', () => {
  it('holds the documented generic worker patterns verbatim', () => {
    const patterns = GENERIC_WORKER_ROUTES.map((e) => e.pattern);
    expect(patterns).toContain('^/_matrix/client/(r0|v3)/sync$');
    expect(patterns).toContain('^/_matrix/federation/v1/send/');
    expect(patterns).toContain('^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$');
    expect(patterns).toContain('^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$');
    expect(GENERIC_WORKER_ROUTES.length).toBe(4 + 17 + 1 + 17 + 5 + 3 + 6 + 2 + 2 + 1 + 1 + 1 + 1 + 8);
    for (const e of ROUTING_TABLE) expect(() => new RegExp(e.pattern)).not.toThrow();
  });

  it('tags stream-writer endpoints with their stream', () => {
    const typing = STREAM_WRITER_ROUTES.find((e) => e.category === 'typing')!;
    expect(typing.owner).toEqual({ kind: 'stream', stream: 'typing' });
    expect(typing.pattern).toBe('^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/typing');
    expect(STREAM_WRITER_ROUTES.find((e) => e.category === 'to_device')!.pattern).toBe('^/_matrix/client/(r0|v3|unstable)/sendToDevice/');
  });

  it('turns fastify patterns into sample paths', () => {
    expect(samplePath('/_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId')).toBe(
      '/_matrix/client/v3/rooms/%21sample%3Aexample.org/send/%21sample%3Aexample.org/%21sample%3Aexample.org',
    );
    expect(samplePath('/_matrix/media/v3/download/*')).toBe('/_matrix/media/v3/download/sample/tail');
  });
});

describe('filterRoutesForRole', () => {
  const routes = [
    route('GET', '/health'),
    route('GET', '/_matrix/client/versions'),
    route('GET', '/_matrix/client/v3/sync'),
    route('PUT', '/_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId'),
    route('PUT', '/_matrix/client/v3/rooms/:roomId/typing/:userId'),
    route('PUT', '/_matrix/client/v3/sendToDevice/:eventType/:txnId'),
    route('GET', '/_matrix/client/v3/capabilities'),
    route('GET', '/_matrix/client/v3/pushrules/'),
    route('PUT', '/_matrix/client/v3/pushrules/:scope/:kind/:ruleId'),
    route('GET', '/_matrix/media/v3/download/:serverName/:mediaId'),
    route('POST', '/_synapse/replication/:name/:txnId'),
    route('GET', '/_matrix/client/v3/rooms/:roomId/state'),
    route('PUT', '/_matrix/client/v3/rooms/:roomId/state/:eventType/:stateKey'),
  ];
  const keys = (rs: RouteDef[]) => rs.map((r) => `${r.method} ${r.path}`);

  it('main serves everything', () => {
    expect(filterRoutesForRole(routes, resolveRole(cfg()))).toEqual(routes);
  });

  it('main without the media repository drops media', () => {
    const out = keys(filterRoutesForRole(routes, resolveRole(cfg({ enable_media_repo: false }))));
    expect(out).not.toContain('GET /_matrix/media/v3/download/:serverName/:mediaId');
    expect(out).toContain('GET /_matrix/client/v3/capabilities');
  });

  it('a generic worker serves its list, not typing/to-device unless it writes them', () => {
    const out = keys(filterRoutesForRole(routes, generic()));
    expect(out).toEqual([
      'GET /health',
      'GET /_matrix/client/versions',
      'GET /_matrix/client/v3/sync',
      'PUT /_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId',
      'GET /_matrix/client/v3/pushrules/',
      'POST /_synapse/replication/:name/:txnId',
      'GET /_matrix/client/v3/rooms/:roomId/state',
      'PUT /_matrix/client/v3/rooms/:roomId/state/:eventType/:stateKey',
    ]);
  });

  it('a stream writer also serves its stream endpoints', () => {
    const role = generic({ stream_writers: { typing: ['w1'], to_device: ['w1'] } });
    const out = keys(filterRoutesForRole(routes, role));
    expect(out).toContain('PUT /_matrix/client/v3/rooms/:roomId/typing/:userId');
    expect(out).toContain('PUT /_matrix/client/v3/sendToDevice/:eventType/:txnId');
  });

  it('pushrules only for GET on a worker', () => {
    expect(roleServes(generic(), 'GET', '/_matrix/client/v3/pushrules/global/')).toBe(true);
    expect(roleServes(generic(), 'PUT', '/_matrix/client/v3/pushrules/global/override/x')).toBe(false);
  });

  it('media_repository, pusher, user_dir', () => {
    const media = resolveRole(cfg({ worker_app: 'synapse.app.media_repository', worker_name: 'm', enable_media_repo: false }));
    expect(keys(filterRoutesForRole(routes, media))).toEqual(['GET /health', 'GET /_matrix/media/v3/download/:serverName/:mediaId', 'POST /_synapse/replication/:name/:txnId']);
    const pusher = resolveRole(cfg({ worker_app: 'synapse.app.pusher', worker_name: 'p', start_pushers: false }));
    expect(keys(filterRoutesForRole(routes, pusher))).toEqual(['GET /health', 'POST /_synapse/replication/:name/:txnId']);
    const ud = resolveRole(cfg({ worker_app: 'synapse.app.user_dir', worker_name: 'u' }));
    expect(roleServes(ud, 'POST', '/_matrix/client/v3/user_directory/search')).toBe(true);
    expect(roleServes(ud, 'GET', '/_matrix/client/v3/sync')).toBe(false);
    expect(roleServes(media, 'GET', '/_synapse/admin/v1/media/example.org/abc')).toBe(true);
  });
});
