import { it } from 'vitest';
import { describeShapes } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';
import { deviceKeys, deviceSigningKey, oneTimeKeys } from './keys-helpers.js';

describeShapes('tmp perf', (server) => {
  it('measures', async () => {
    const users = [];
    for (let i = 0; i < 100; i++) users.push(await server().registerUser());
    const base = server().baseUrl;
    const devs: Array<{ u: string; d: string }> = [];
    await Promise.all(users.map(async (u) => {
      for (let j = 0; j < 5; j++) {
        const l = await new RawClient(base).post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.userId }, password: u.password });
        const c = new RawClient(base, l.body.access_token);
        const k = deviceSigningKey(l.body.device_id);
        await c.post('/_matrix/client/v3/keys/upload', { device_keys: deviceKeys(u.userId, l.body.device_id, k), one_time_keys: oneTimeKeys(u.userId, l.body.device_id, k, 5) });
        devs.push({ u: u.userId, d: l.body.device_id });
      }
    }));
    const c = new RawClient(base, users[0]!.accessToken);
    const q = { device_keys: Object.fromEntries(users.map((u) => [u.userId, []])) };
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await c.post('/_matrix/client/v3/keys/query', q);
      console.log(server().shape, 'query', (performance.now() - t).toFixed(1), 'ms', Object.values(r.body.device_keys).reduce((n: number, m: any) => n + Object.keys(m).length, 0));
    }
    const byUser: Record<string, Record<string, string>> = {};
    for (const d of devs.slice(0, 100)) (byUser[d.u] ??= {})[d.d] = 'signed_curve25519';
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await c.post('/_matrix/client/v3/keys/claim', { one_time_keys: byUser });
      console.log(server().shape, 'claim', (performance.now() - t).toFixed(1), 'ms', Object.values(r.body.one_time_keys).reduce((n: number, m: any) => n + Object.keys(m).length, 0));
    }
  }, 300_000);
});
