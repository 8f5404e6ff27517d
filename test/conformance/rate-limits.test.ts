/**
 * 429 M_LIMIT_EXCEEDED bodies conform to errors/rate_limited.yaml (and carry
 * retry_after_ms), on a server with tight login and registration limits.
 * (rc_message is not enforced yet, so /send is not covered here.)
 */
import { expect, it } from 'vitest';
import { describeShapes } from '../helpers/homeserver.js';
import { RawClient } from '../helpers/http.js';
import { ConformClient } from './client.js';

const V3 = '/_matrix/client/v3';

describeShapes(
  'rate-limit responses conform',
  (server) => {
    it('login and register answer 429 with a conforming body', async () => {
      const c = new ConformClient(new RawClient(server().baseUrl));
      const u = await server().registerUser();
      let loginLimited = false;
      for (let i = 0; i < 10 && !loginLimited; i++) {
        const l = await c.raw.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: 'wrong' });
        loginLimited = l.status === 429;
      }
      expect(loginLimited).toBe(true);
      const l = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.localpart }, password: 'wrong' }, { status: 429, errcode: 'M_LIMIT_EXCEEDED' });
      expect(l.body.retry_after_ms).toBeTypeOf('number');
      let regLimited = false;
      for (let i = 0; i < 10 && !regLimited; i++) {
        const r = await c.raw.post(`${V3}/register`, { username: `rl${Date.now()}${i}`, password: 'pw-rate-limit', auth: { type: 'm.login.dummy' } });
        regLimited = r.status === 429;
      }
      expect(regLimited).toBe(true);
      await c.post(`${V3}/register`, { username: `rlx${Date.now()}`, password: 'pw-rate-limit', auth: { type: 'm.login.dummy' } }, { status: 429, errcode: 'M_LIMIT_EXCEEDED' });
      expect(c.violations, '\n' + c.violations.join('\n')).toEqual([]);
    });
  },
  {
    config: {
      rc_registration: { per_second: 0.01, burst_count: 2 },
      rc_login: { address: { per_second: 0.01, burst_count: 3 }, account: { per_second: 0.01, burst_count: 3 }, failed_attempts: { per_second: 0.01, burst_count: 3 } },
    },
  },
);
