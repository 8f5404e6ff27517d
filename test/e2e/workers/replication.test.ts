/**
 * The replication resource on a running server: Bearer secret, unknown
 * endpoints, idempotency by txnId, and the ReplicationClient against it.
 */
import { expect, it } from 'vitest';
import { afterAll, beforeAll, describe } from 'vitest';
import { freePort, shapesUnderTest } from '../../helpers/homeserver.js';
import { makeCluster, type Cluster } from './cluster.js';
import { RawClient } from '../../helpers/http.js';
import { ReplicationClient } from '../../../src/workers/replication-client.js';

const SECRET = 'repl-secret-for-tests';
for (const shape of shapesUnderTest()) {
  describe(`HTTP replication listener [${shape}]`, () => {
    let cluster: Cluster;
    let replPort = 0;
    const server = () => cluster.main;
    beforeAll(async () => {
      // A single process with a replication listener: not a worker deployment, so SQLite is fine.
      cluster = await makeCluster(shape, () => ({ worker_replication_secret: SECRET }));
      replPort = cluster.replPort;
      await cluster.main.start();
    });
    afterAll(async () => {
      await cluster?.main.stop();
    });
    const repl = () => new RawClient(`http://127.0.0.1:${replPort}`);
    const auth = { authorization: `Bearer ${SECRET}` };

    it('answers a registered endpoint with the right secret, once per txnId', async () => {
      const a = await repl().request('POST', '/_synapse/replication/ping/txn1', {}, { headers: auth });
      expect(a.status).toBe(200);
      expect(a.body.instance_name).toBe('master');
      expect(a.body.nonce).toMatch(/^[0-9a-f]{16}$/);
      const again = await repl().request('POST', '/_synapse/replication/ping/txn1', {}, { headers: auth });
      expect(again.body).toEqual(a.body);
      const other = await repl().request('POST', '/_synapse/replication/ping/txn2', {}, { headers: auth });
      expect(other.body.nonce).not.toBe(a.body.nonce);
    });

    it('refuses a wrong or missing secret with 403 M_FORBIDDEN', async () => {
      const wrong = await repl().request('POST', '/_synapse/replication/ping/t', {}, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(403);
      expect(wrong.body.errcode).toBe('M_FORBIDDEN');
      const missing = await repl().request('POST', '/_synapse/replication/ping/t', {});
      expect(missing.status).toBe(403);
      expect(missing.body.errcode).toBe('M_FORBIDDEN');
    });

    it('answers unknown endpoints with 404 M_UNRECOGNIZED', async () => {
      const r = await repl().request('POST', '/_synapse/replication/no_such_thing/t', {}, { headers: auth });
      expect(r.status).toBe(404);
      expect(r.body.errcode).toBe('M_UNRECOGNIZED');
    });

    it('is not served on the client listener', async () => {
      const r = await new RawClient(server().baseUrl).request('POST', '/_synapse/replication/ping/t', {}, { headers: auth });
      expect(r.status).toBe(404);
      expect(r.body.errcode).toBe('M_UNRECOGNIZED');
    });

    it('ReplicationClient calls it through instance_map.main, and surfaces refusals', async () => {
      const config = { instance_map: { main: { host: '127.0.0.1', port: replPort, tls: false } }, worker_replication_secret: SECRET };
      const client = new ReplicationClient({ config });
      const r = await client.call('master', 'ping', {}, 'client-txn');
      expect(r.instance_name).toBe('master');
      expect(await client.call('main', 'ping', {}, 'client-txn')).toEqual(r);
      const bad = new ReplicationClient({ config: { ...config, worker_replication_secret: 'wrong' } });
      await expect(bad.call('master', 'ping', {})).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
      await expect(client.call('master', 'nope', {})).rejects.toMatchObject({ status: 404, errcode: 'M_UNRECOGNIZED' });
    });

    it('ReplicationClient retries when the target is down, then gives up with 502', async () => {
      const deadPort = await freePort();
      const client = new ReplicationClient({ config: { instance_map: { main: { host: '127.0.0.1', port: deadPort, tls: false } } }, attempts: 3, backoffMs: 10 });
      await expect(client.call('master', 'ping', {})).rejects.toMatchObject({ status: 502 });
      await expect(client.call('nowhere', 'ping', {})).rejects.toThrow(/not in instance_map/);
    });
  });
}
