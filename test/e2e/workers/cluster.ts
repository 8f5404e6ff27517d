/**
 * Helpers for worker-mode end-to-end tests: a generated homeserver.yaml with
 * our own listeners (client + replication), optional PostgreSQL/Redis, and
 * worker files, each process a TestServer.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createPgDatabase, freePort, runCli, testConfigDefaults, TestServer, type Shape } from '../../helpers/homeserver.js';

export interface Cluster {
  dir: string;
  serverName: string;
  clientPort: number;
  replPort: number;
  sharedPaths: string[];
  secret: string;
  main: TestServer;
  dropDb?: () => Promise<void>;
  /** Writes a worker file into dir/workers and returns its TestServer (not started) on its client port. */
  addWorker(name: string, body: Record<string, unknown>, clientPort?: number): TestServer;
}

export async function makeCluster(shape: Shape, shared: (ports: { clientPort: number; replPort: number }) => Record<string, unknown>): Promise<Cluster> {
  const serverName = `w${randomBytes(3).toString('hex')}.local`;
  const dir = mkdtempSync(join(tmpdir(), 'myelin-workers-'));
  mkdirSync(join(dir, 'workers'));
  const clientPort = await freePort();
  const replPort = await freePort();
  const base = join(dir, 'homeserver.yaml');
  const gen = await runCli(['generate-config', '--server-name', serverName, '--config-path', base, '--data-dir', dir, '--port', String(clientPort)]);
  if (gen.code !== 0) throw new Error(gen.stderr);
  const overrides: Record<string, unknown> = {
    ...testConfigDefaults(),
    listeners: [
      { port: clientPort, bind_addresses: ['127.0.0.1'], type: 'http', resources: [{ names: ['client', 'federation'] }] },
      { port: replPort, bind_addresses: ['127.0.0.1'], type: 'http', resources: [{ names: ['replication'] }] },
    ],
    ...shared({ clientPort, replPort }),
  };
  let dropDb: (() => Promise<void>) | undefined;
  // The workers shape's own deployment is worker-deployment.ts; here it means PostgreSQL.
  if (shape === 'postgres' || shape === 'workers') {
    const db = await createPgDatabase('myelin_workers');
    overrides.database = { name: 'psycopg2', args: db.args };
    dropDb = db.drop;
  }
  const overridePath = join(dir, 'shared-overrides.yaml');
  writeFileSync(overridePath, stringify(overrides));
  const secret = /registration_shared_secret:\s*"([^"]+)"/.exec(readFileSync(base, 'utf8'))![1]!;
  const sharedPaths = [base, overridePath];
  const main = new TestServer(shape, serverName, clientPort, dir, sharedPaths, secret, dropDb);
  return {
    dir,
    serverName,
    clientPort,
    replPort,
    sharedPaths,
    secret,
    main,
    dropDb,
    addWorker(name, body, port) {
      const path = join(dir, 'workers', `${name}.yaml`);
      writeFileSync(path, stringify({ worker_name: name, ...body }));
      return new TestServer(shape, serverName, port ?? 0, join(dir, 'workers', name), [...sharedPaths, path], secret);
    },
  };
}
