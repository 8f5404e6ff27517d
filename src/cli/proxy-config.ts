/**
 * `myelin proxy-config --nginx -c homeserver.yaml [-a WORKERS_DIR] [-w WORKER.yaml ...]`
 * prints (or writes, with -o) an nginx configuration generated from the
 * routing table for this deployment.
 *
 *   --listen PORT|ADDR:PORT      the server block's listen (default 8008)
 *   --server-name NAME           the server block's server_name (default server_name)
 *   --pool POOL=w1,w2            pool membership (sync, initial_sync, federation,
 *                                federation_inbound, client, login, event_sending,
 *                                pagination); default: every generic worker with a
 *                                listener for the pool (no initial_sync pool), but
 *                                event_sending goes to the event persisters, by
 *                                room, when each has a client listener
 *   --standalone PREFIX          a complete nginx.conf using PREFIX for pid/logs/temp
 */
import { writeFileSync } from 'node:fs';
import { flag, flagAll, parseArgs } from './args.js';
import { loadDeployment, workerFilesIn } from '../workers/deployment.js';
import { generateNginxConfig, POOL_NAMES, type PoolName } from '../workers/nginx.js';

export const PROXY_CONFIG_USAGE = `usage: myelin proxy-config --nginx -c homeserver.yaml [-a WORKERS_DIR] [-w WORKER.yaml ...]
       [--listen 8008] [--server-name NAME] [--pool POOL=w1,w2 ...] [--standalone PREFIX] [-o FILE]`;

export function proxyConfig(argv: string[]): string {
  const a = parseArgs(argv, ['nginx']);
  if (!a.flags.has('nginx')) throw new Error(`proxy-config: only --nginx is supported\n${PROXY_CONFIG_USAGE}`);
  const configs = flagAll(a, 'c', 'config-path', 'config');
  if (!configs.length) throw new Error(`proxy-config: -c homeserver.yaml is required\n${PROXY_CONFIG_USAGE}`);
  const workerPaths = [...flagAll(a, 'w', 'worker'), ...flagAll(a, 'a', 'workers-dir').flatMap(workerFilesIn)];
  const pools: Partial<Record<PoolName, string[]>> = {};
  for (const spec of flagAll(a, 'pool')) {
    const [name, list] = spec.split('=', 2);
    if (!POOL_NAMES.includes(name as PoolName) || list === undefined) {
      throw new Error(`proxy-config: --pool expects POOL=w1,w2 with POOL one of ${POOL_NAMES.join(', ')}; got ${spec}`);
    }
    pools[name as PoolName] = list.split(',').map((s) => s.trim()).filter(Boolean);
  }
  const d = loadDeployment(configs, workerPaths);
  const standalone = flag(a, 'standalone');
  const text = generateNginxConfig(d.shared, d.workers, {
    listen: flag(a, 'listen'),
    serverName: flag(a, 'server-name'),
    pools,
    standalone: standalone ? { prefix: standalone } : undefined,
  });
  const outFile = flag(a, 'o', 'output');
  if (outFile) writeFileSync(outFile, text);
  return text;
}
