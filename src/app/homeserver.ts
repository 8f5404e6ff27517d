/**
 * Starts a homeserver process: services, then one HTTP server per listener
 * and bind address. Returns a handle that stops everything in order.
 */
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { buildHttpServer } from '../api/http-server.js';
import { routesFor } from '../api/routes.js';
import type { LoadedConfig } from '../config/load.js';
import { resolveRole } from '../workers/role.js';
import { filterRoutesForRole } from '../workers/route-filter.js';
import { assemble } from './assemble.js';
import type { Services } from './services.js';

export interface RunningHomeserver {
  services: Services;
  /** URLs the HTTP listeners serve, e.g. http://127.0.0.1:8008 */
  urls: string[];
  stop(): Promise<void>;
}

/** JSON bodies are limited to this unless a route says otherwise (events are at most 64 KiB). */
const JSON_BODY_LIMIT = 1024 * 1024;

export async function startHomeserver(config: LoadedConfig): Promise<RunningHomeserver> {
  const services = await assemble(config);
  const role = resolveRole(config);
  const servers: FastifyInstance[] = [];
  const metricsServers: import('node:http').Server[] = [];
  const urls: string[] = [];
  const listeners = config.worker_app ? (config.worker_listeners ?? []) : config.listeners;
  const https =
    config.tls_certificate_path && config.tls_private_key_path
      ? { cert: readFileSync(config.tls_certificate_path), key: readFileSync(config.tls_private_key_path) }
      : undefined;
  try {
    for (const listener of listeners) {
      if (listener.type === 'metrics' && services.workers) {
        // Prometheus metrics of this process (src/workers/metrics.ts).
        for (const host of listener.bind_addresses ?? (listener.bind_address ? [listener.bind_address] : ['127.0.0.1'])) {
          const srv = await services.workers.metrics.listen(host, listener.port ?? 0);
          metricsServers.push(srv);
          const a = srv.address();
          services.logger.info(`metrics on http://${host.includes(':') ? `[${host}]` : host}:${typeof a === 'object' && a ? a.port : listener.port}/metrics`);
        }
        continue;
      }
      if (listener.type !== 'http') continue;
      const names = listener.resources.flatMap((r) => r.names);
      // A worker mounts only the endpoints of its role (the routing table); the main process all.
      const routes = filterRoutesForRole(routesFor(names, services), role);
      const addresses = listener.bind_addresses ?? (listener.bind_address ? [listener.bind_address] : ['::', '0.0.0.0']);
      for (const host of addresses) {
        const app = await buildHttpServer(routes, {
          logger: services.logger,
          processName: services.instanceName,
          authenticator: services.authenticator,
          bodyLimit: Math.max(JSON_BODY_LIMIT, names.includes('media') ? config.max_upload_size : 0),
          trustProxy: listener.x_forwarded,
          https: listener.tls ? https : undefined,
          // Per-request metrics only where a metrics listener can serve them.
          onRequestDone: listeners.some((l) => l.type === 'metrics') ? services.workers?.metrics.onRequestDone : undefined,
        });
        try {
          await app.listen({ host, port: listener.port ?? 0 });
        } catch (e: any) {
          // '::' is usually dual-stack already, so 0.0.0.0 on the same port is taken.
          if (e?.code === 'EADDRINUSE' && addresses.length > 1 && host === '0.0.0.0') {
            await app.close();
            continue;
          }
          if (e?.code === 'EAFNOSUPPORT' || e?.code === 'EADDRNOTAVAIL') {
            await app.close();
            continue;
          }
          throw e;
        }
        servers.push(app);
        const addr = app.server.address();
        const port = typeof addr === 'object' && addr ? addr.port : listener.port;
        const shown = host === '::' || host === '0.0.0.0' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
        urls.push(`${listener.tls ? 'https' : 'http'}://${shown}:${port}`);
      }
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.close()));
    for (const m of metricsServers) m.close();
    await services.db.close();
    throw e;
  }

  let stopped = false;
  return {
    services,
    urls,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const fn of services.onShutdown) await fn();
      await Promise.all(servers.map((s) => s.close()));
      for (const m of metricsServers) m.close();
      await services.db.close();
    },
  };
}
