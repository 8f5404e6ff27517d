/** matrix-js-sdk clients for end-to-end tests. */
import * as sdk from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import type { RegisteredUser, TestServer } from './homeserver.js';

// The SDK logs every request at debug level; the tests assert instead.
(sdkLogger as unknown as { disableAll?: () => void }).disableAll?.();

/** A client logged in as `u` (a user from `server.registerUser()`). */
export function sdkClient(server: TestServer, u: RegisteredUser): sdk.MatrixClient {
  return sdk.createClient({ baseUrl: server.baseUrl, accessToken: u.accessToken, userId: u.userId, deviceId: u.deviceId });
}

/** Two registered users and their clients. */
export async function twoSdkUsers(server: TestServer): Promise<{
  aliceU: RegisteredUser;
  bobU: RegisteredUser;
  alice: sdk.MatrixClient;
  bob: sdk.MatrixClient;
}> {
  const aliceU = await server.registerUser();
  const bobU = await server.registerUser();
  return { aliceU, bobU, alice: sdkClient(server, aliceU), bob: sdkClient(server, bobU) };
}
