/**
 * End-to-end encryption through a real client: matrix-js-sdk with its Rust
 * crypto. Two users exchange messages in an encrypted room and each decrypts
 * the other's; then a new device of the same user verifies itself with
 * cross-signing and reads history restored from the server-side key backup.
 */
import { afterAll, expect, it, onTestFailed } from 'vitest';
import * as sdk from 'matrix-js-sdk';
import { LoggerLevel, Tracing } from '@matrix-org/matrix-sdk-crypto-wasm';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { describeShapes, type RegisteredUser } from '../../helpers/homeserver.js';
import { RawClient } from '../../helpers/http.js';

(sdkLogger as any).setLevel?.('error');

const clients: sdk.MatrixClient[] = [];

/** Lets in-flight requests settle, then stops every client (before the server goes away). */
async function stopClients(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  for (const c of clients.splice(0)) c.stopClient();
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startCryptoClient(baseUrl: string, u: { userId: string; accessToken: string; deviceId: string }): Promise<sdk.MatrixClient> {
  const client = sdk.createClient({ baseUrl, accessToken: u.accessToken, userId: u.userId, deviceId: u.deviceId });
  await client.initRustCrypto({ useIndexedDB: false });
  // initRustCrypto turns Rust tracing on at debug level; keep test output readable.
  new Tracing(LoggerLevel.Warn).turnOn();
  clients.push(client);
  const ready = new Promise<void>((resolve, reject) => {
    client.on(sdk.ClientEvent.Sync, (state: string) => {
      if (state === 'PREPARED' || state === 'SYNCING') resolve();
      if (state === 'ERROR') reject(new Error('sync error'));
    });
  });
  await client.startClient({ initialSyncLimit: 20 });
  await ready;
  return client;
}

/** Text bodies of decrypted m.room.message events in the room's live timeline. */
async function decryptedBodies(client: sdk.MatrixClient, roomId: string): Promise<string[]> {
  const room = client.getRoom(roomId);
  if (!room) return [];
  const out: string[] = [];
  for (const ev of room.getLiveTimeline().getEvents()) {
    if (!ev.isEncrypted()) continue;
    await client.decryptEventIfNeeded(ev);
    if (ev.getType() === 'm.room.message' && !ev.isDecryptionFailure()) out.push(ev.getContent().body);
  }
  return out;
}

describeShapes('e2ee with matrix-js-sdk and Rust crypto', (server) => {
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let a1: sdk.MatrixClient;
  let b1: sdk.MatrixClient;
  let roomId: string;
  // Registered after the server's own afterAll, so it runs first.
  afterAll(stopClients);
  /** On failure, show the server's errors (the client only sees a status). */
  const showServerErrors = () =>
    onTestFailed(() => {
      const lines = server().output.split('\n').filter((l) => /"level":50|"statusCode":5\d\d|"status":5\d\d/.test(l));
      console.error(`server errors:\n${lines.slice(-30).join('\n')}`);
    });

  it('two users exchange messages in an encrypted room and each decrypts the other', async () => {
    showServerErrors();
    const baseUrl = server().baseUrl;
    alice = await server().registerUser();
    bob = await server().registerUser();
    a1 = await startCryptoClient(baseUrl, alice);
    b1 = await startCryptoClient(baseUrl, bob);

    const created = await a1.createRoom({
      invite: [bob.userId],
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    roomId = created.room_id;
    await waitFor('bob to see the invite', () => b1.getRoom(roomId)?.getMyMembership() === 'invite');
    await b1.joinRoom(roomId);
    await waitFor('alice to see bob joined', () => a1.getRoom(roomId)?.getMember(bob.userId)?.membership === 'join');
    await waitFor('bob to see the room encrypted', () => b1.getCrypto()!.isEncryptionEnabledInRoom(roomId));

    await a1.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'hello bob' });
    await waitFor('bob to decrypt alice', async () => (await decryptedBodies(b1, roomId)).includes('hello bob'));
    await b1.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: 'hello alice' });
    await waitFor('alice to decrypt bob', async () => (await decryptedBodies(a1, roomId)).includes('hello alice'));

    // The server only ever saw ciphertext.
    const raw = new RawClient(baseUrl, alice.accessToken);
    const msgs = await raw.get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`);
    expect(msgs.status).toBe(200);
    const types = msgs.body.chunk.map((e: any) => e.type);
    expect(types).toContain('m.room.encrypted');
    expect(types).not.toContain('m.room.message');
    expect(JSON.stringify(msgs.body)).not.toContain('hello bob');
  }, 90_000);

  it('a new device verifies itself with cross-signing and restores history from key backup', async () => {
    showServerErrors();
    const baseUrl = server().baseUrl;
    const crypto1 = a1.getCrypto()!;
    await crypto1.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password } as any);
      },
    });
    expect(await crypto1.isCrossSigningReady()).toBe(true);
    await crypto1.resetKeyBackup();
    const version = await waitFor('an active backup', () => crypto1.getActiveSessionBackupVersion());

    // The Megolm sessions of the room reach the server's backup.
    const raw = new RawClient(baseUrl, alice.accessToken);
    await waitFor(
      'keys in the backup',
      async () => {
        const r = await raw.get(`/_matrix/client/v3/room_keys/version/${version}`);
        return r.status === 200 && r.body.count >= 2;
      },
      60_000,
    );

    // A second device for Alice.
    const login = await new RawClient(baseUrl).post('/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: alice.userId },
      password: alice.password,
    });
    expect(login.status).toBe(200);
    const a2 = await startCryptoClient(baseUrl, { userId: alice.userId, accessToken: login.body.access_token, deviceId: login.body.device_id });
    const crypto2 = a2.getCrypto()!;
    await waitFor('the new device to know the room', () => a2.getRoom(roomId));

    // Before: the new device cannot read history and is not verified.
    expect(await decryptedBodies(a2, roomId)).toEqual([]);
    expect((await crypto2.getDeviceVerificationStatus(alice.userId, login.body.device_id))?.crossSigningVerified).toBe(false);

    // The user hands the new device their secrets (as QR login does), and it signs itself.
    // (The import checks the private keys against the public ones, which the device must know first.)
    await waitFor('the new device to see the cross-signing keys', () => crypto2.userHasCrossSigningKeys(alice.userId, true));
    const bundle = await crypto1.exportSecretsBundle!();
    await crypto2.importSecretsBundle!(bundle);
    await waitFor('the private keys imported', async () => (await crypto2.getCrossSigningStatus()).privateKeysCachedLocally.selfSigningKey);
    await crypto2.crossSignDevice(login.body.device_id);
    await waitFor('the new device to be cross-signing verified', async () =>
      (await crypto2.getDeviceVerificationStatus(alice.userId, login.body.device_id))?.crossSigningVerified,
    );
    // The server shows the self-signing signature on the new device to others.
    const q = await new RawClient(baseUrl, bob.accessToken).post('/_matrix/client/v3/keys/query', { device_keys: { [alice.userId]: [login.body.device_id] } });
    const sigs = q.body.device_keys[alice.userId][login.body.device_id].signatures[alice.userId];
    const ssk = Object.keys(q.body.self_signing_keys[alice.userId].keys)[0]!;
    expect(sigs[ssk]).toBeDefined();
    // The old device sees the new one as verified too.
    await waitFor('the old device to trust the new one', async () => {
      await crypto1.getUserDeviceInfo([alice.userId], true);
      return (await crypto1.getDeviceVerificationStatus(alice.userId, login.body.device_id))?.crossSigningVerified;
    });

    // Restore history from the backup.
    const check = await crypto2.checkKeyBackupAndEnable();
    expect(check?.backupInfo?.version).toBe(version);
    const restored = await crypto2.restoreKeyBackup();
    expect(restored.imported).toBeGreaterThanOrEqual(2);
    await waitFor('history decrypted on the new device', async () => {
      const bodies = await decryptedBodies(a2, roomId);
      return bodies.includes('hello bob') && bodies.includes('hello alice');
    });
  }, 150_000);
});
