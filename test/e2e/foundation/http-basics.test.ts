import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

describeShapes('shared HTTP behaviour', (server) => {
  const client = () => new RawClient(server().baseUrl);

  it('serves /versions', async () => {
    const r = await client().get('/_matrix/client/versions');
    expect(r.status).toBe(200);
    expect(r.body.versions).toContain('v1.1');
  });

  it('answers unknown endpoints with 404 M_UNRECOGNIZED', async () => {
    const r = await client().get('/_matrix/client/v3/no/such/thing');
    expect(r.status).toBe(404);
    expect(r.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('answers a known path with a wrong method with 405 M_UNRECOGNIZED', async () => {
    const r = await client().request('DELETE', '/_matrix/client/versions');
    expect(r.status).toBe(405);
    expect(r.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('requires a token where one is needed', async () => {
    const r = await client().get('/_matrix/client/v3/capabilities');
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('answers CORS preflight', async () => {
    const r = await client().request('OPTIONS', '/_matrix/client/v3/login', undefined, {
      headers: { origin: 'https://app.element.io', 'access-control-request-method': 'POST' },
    });
    expect(r.status).toBeLessThan(300);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(r.headers.get('access-control-allow-methods')).toMatch(/PUT/);
    expect(r.headers.get('access-control-max-age')).toBe('86400');
    // Any path, known or not, gets its preflight answered.
    const unknown = await client().request('OPTIONS', '/_matrix/client/v3/no/such/thing', undefined, {
      headers: { origin: 'https://app.element.io', 'access-control-request-method': 'GET' },
    });
    expect(unknown.status).toBeLessThan(300);
    // An OPTIONS request that is not a preflight is refused.
    const bare = await client().request('OPTIONS', '/_matrix/client/v3/login');
    expect(bare.status).toBe(400);
  });

  it('puts CORS headers on answers and on errors', async () => {
    for (const r of [
      await client().get('/_matrix/client/versions'),
      await client().get('/_matrix/client/v3/no/such/thing'),
      await client().get('/_matrix/client/v3/capabilities'),
    ]) {
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      expect(r.headers.get('access-control-expose-headers')).toBe('Retry-After');
    }
  });

  it('serves /health', async () => {
    const r = await client().get('/health');
    expect(r.status).toBe(200);
    expect(r.body).toBe('OK');
  });
});
