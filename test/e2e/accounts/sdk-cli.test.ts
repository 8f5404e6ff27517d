/** matrix-js-sdk against the server (register, login, whoami, logout) and `myelin register-user`. */
import * as sdk from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { describeShapes, runCli } from '../../helpers/homeserver.js';

// matrix-js-sdk logs every request at debug level: keep test output readable
(sdkLogger as unknown as { setLevel?: (l: string) => void }).setLevel?.('warn');
import { RawClient } from '../../helpers/http.js';

describeShapes('accounts: matrix-js-sdk and the CLI', (server) => {
  it('registers, logs in, asks whoami and logs out with matrix-js-sdk', async () => {
    const baseUrl = server().baseUrl;
    const username = `sdk${randomBytes(4).toString('hex')}`;
    const anon = sdk.createClient({ baseUrl });
    let session: string | undefined;
    try {
      await anon.registerRequest({ username, password: 'sdk-password' });
      throw new Error('expected a UIA challenge');
    } catch (e: any) {
      expect(e.httpStatus).toBe(401);
      session = e.data.session;
      expect(e.data.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    }
    const reg = await anon.registerRequest({ username, password: 'sdk-password', auth: { type: 'm.login.dummy', session } });
    expect(reg.user_id).toBe(`@${username}:${server().serverName}`);
    expect(reg.access_token).toBeTruthy();

    const c = sdk.createClient({ baseUrl });
    const login = await c.loginWithPassword(username, 'sdk-password');
    expect(login.user_id).toBe(reg.user_id);
    const authed = sdk.createClient({ baseUrl, accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });
    const who = await authed.whoami();
    expect(who.user_id).toBe(reg.user_id);
    expect(who.device_id).toBe(login.device_id);
    await authed.logout();
    await expect(authed.whoami()).rejects.toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
    anon.stopClient();
    c.stopClient();
    authed.stopClient();
  });

  it('creates users with `myelin register-user`', async () => {
    const user = `cli${randomBytes(4).toString('hex')}`;
    const r = await runCli(['register-user', ...server().configPaths.flatMap((p) => ['-c', p]), '-u', user, '-p', 'cli-pw', '--admin']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`@${user}:${server().serverName}`);
    const login = await new RawClient(server().baseUrl).post('/_matrix/client/v3/login', { type: 'm.login.password', user, password: 'cli-pw' });
    expect(login.status).toBe(200);
    // it was made an admin: the admin-only token API answers
    const tokens = await new RawClient(server().baseUrl, login.body.access_token).get('/_synapse/admin/v1/registration_tokens');
    expect(tokens.status).toBe(200);
    // a second time fails with a clear message and a non-zero exit
    const again = await runCli(['register-user', ...server().configPaths.flatMap((p) => ['-c', p]), '-u', user, '-p', 'cli-pw']);
    expect(again.code).not.toBe(0);
    expect(again.stderr + again.stdout).toMatch(/M_USER_IN_USE/);
  });
});
