/**
 * rc_login / rc_registration limits answer 429 M_LIMIT_EXCEEDED with
 * retry_after_ms; expired refreshable access tokens answer soft_logout true.
 */
import { expect, it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

const V3 = '/_matrix/client/v3';
const slow = { per_second: 0.01, burst_count: 3 };

describeShapes(
  'accounts: rate limits and token expiry',
  (server) => {
    const client = () => new RawClient(server().baseUrl);

    it('limits failed login attempts per account', async () => {
      const u = await server().registerUser();
      const statuses: number[] = [];
      let limited: any;
      for (let i = 0; i < 5; i++) {
        const r = await client().post(`${V3}/login`, { type: 'm.login.password', user: u.localpart, password: 'wrong' });
        statuses.push(r.status);
        if (r.status === 429) limited = r;
      }
      expect(statuses.slice(0, 3)).toEqual([403, 403, 403]);
      expect(statuses[3]).toBe(429);
      expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(limited.body.retry_after_ms).toBeGreaterThan(0);
      expect(limited.headers.get('retry-after')).toBeTruthy();
      // even the right password is refused while limited
      const right = await client().post(`${V3}/login`, { type: 'm.login.password', user: u.localpart, password: u.password });
      expect(right.status).toBe(429);
      // another account is not affected
      const v = await server().registerUser();
      expect((await client().post(`${V3}/login`, { type: 'm.login.password', user: v.localpart, password: v.password })).status).toBe(200);
    });

    it('limits registrations per address', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await client().post(`${V3}/register`, { username: `rl${i}x${Date.now()}`, password: 'pw', auth: { type: 'm.login.dummy' } });
        statuses.push(r.status);
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses[3]).toBe(429);
    });

    it('expires refreshable access tokens with soft_logout true, and refresh recovers', async () => {
      const u = await server().registerUser();
      const l = await client().post(`${V3}/login`, { type: 'm.login.password', user: u.localpart, password: u.password, refresh_token: true });
      expect(l.body.expires_in_ms).toBe(700);
      expect((await client().withToken(l.body.access_token).get(`${V3}/account/whoami`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 800));
      const expired = await client().withToken(l.body.access_token).get(`${V3}/account/whoami`);
      expect(expired.status).toBe(401);
      expect(expired.body).toMatchObject({ errcode: 'M_UNKNOWN_TOKEN', soft_logout: true });
      const r = await client().post(`${V3}/refresh`, { refresh_token: l.body.refresh_token });
      expect(r.status).toBe(200);
      expect((await client().withToken(r.body.access_token).get(`${V3}/account/whoami`)).status).toBe(200);
      // tokens without a refresh token do not expire
      expect((await client().withToken(u.accessToken).get(`${V3}/account/whoami`)).status).toBe(200);
    });
  },
  {
    config: {
      rc_login: {
        address: { per_second: 1000, burst_count: 1000 },
        account: { per_second: 1000, burst_count: 1000 },
        failed_attempts: slow,
      },
      rc_registration: slow,
      refreshable_access_token_lifetime: 700,
    },
  },
);
