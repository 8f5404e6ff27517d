/**
 * Prometheus metrics of one process (issue "Metrics per process"), served by
 * `type: metrics` listeners at `/metrics` (and `/_synapse/metrics`):
 *
 *   myelin_http_requests_total{method,route,status}
 *   myelin_http_request_duration_seconds{method,route}      histogram
 *   myelin_stream_position{stream,instance}                  this process's view of each stream (events: each writer, and "min")
 *   myelin_replication_lag_seconds{stream}                   RDATA publish -> apply here
 *   myelin_replication_rows_total{stream,direction}          rows published / applied
 *   myelin_replication_catchups_total{reason}                catch-ups from the database that moved a stream
 *   myelin_notifier_waiters                                  /sync and /events long-polls waiting now
 * plus Node's default process metrics (CPU, memory, event loop lag).
 */
import { createServer, type Server } from 'node:http';
import client from 'prom-client';
import type { StreamIdGenerator } from '../streams/id-generator.js';
import type { NotifiedStream } from '../streams/notifier-types.js';
import { MultiWriterEventsStream } from './events-stream.js';
import type { ReplicationMetricsHooks } from './stream-replication.js';

export interface MetricsSources {
  instanceName: string;
  streams: Partial<Record<NotifiedStream, StreamIdGenerator>>;
  waiters: () => number;
}

export class ProcessMetrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter<'method' | 'route' | 'status'>;
  private readonly durations: client.Histogram<'method' | 'route'>;
  private readonly lag: client.Histogram<'stream'>;
  private readonly rows: client.Counter<'stream' | 'direction'>;
  private readonly catchups: client.Counter<'reason'>;
  private sources: MetricsSources | undefined;

  constructor(instanceName: string) {
    this.registry.setDefaultLabels({ instance_name: instanceName });
    client.collectDefaultMetrics({ register: this.registry, prefix: 'myelin_process_' });
    const registers = [this.registry];
    this.requests = new client.Counter({ name: 'myelin_http_requests_total', help: 'HTTP requests by endpoint and status', labelNames: ['method', 'route', 'status'], registers });
    this.durations = new client.Histogram({
      name: 'myelin_http_request_duration_seconds',
      help: 'HTTP request latency by endpoint',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.lag = new client.Histogram({
      name: 'myelin_replication_lag_seconds',
      help: 'Time from a stream row being published by its writer to being applied here',
      labelNames: ['stream'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.rows = new client.Counter({ name: 'myelin_replication_rows_total', help: 'Stream rows published or applied', labelNames: ['stream', 'direction'], registers });
    this.catchups = new client.Counter({ name: 'myelin_replication_catchups_total', help: 'Catch-ups from the database that moved a stream', labelNames: ['reason'], registers });
    const sourcesNow = () => this.sources;
    new client.Gauge({
      name: 'myelin_stream_position',
      help: "This process's current position of each stream (events: per writer, and min)",
      labelNames: ['stream', 'instance'],
      registers,
      collect() {
        this.reset();
        const src = sourcesNow();
        if (!src) return;
        for (const [name, g] of Object.entries(src.streams) as Array<[string, StreamIdGenerator | undefined]>) {
          if (!g) continue;
          if (g instanceof MultiWriterEventsStream) {
            const pos = g.multi.getPosition();
            this.set({ stream: name, instance: 'min' }, pos.min);
            for (const [w, p] of Object.entries(pos.writers ?? {})) this.set({ stream: name, instance: w }, p);
          } else {
            this.set({ stream: name, instance: src.instanceName }, g.getCurrent());
          }
        }
      },
    });
    new client.Gauge({
      name: 'myelin_notifier_waiters',
      help: 'Long-polls (/sync, /events) waiting for a change',
      registers,
      collect() {
        this.set(sourcesNow()?.waiters() ?? 0);
      },
    });
  }

  setSources(s: MetricsSources): void {
    this.sources = s;
  }

  onRequestDone = (info: { method: string; route: string; status: number; durationMs: number }): void => {
    this.requests.inc({ method: info.method, route: info.route, status: String(info.status) });
    this.durations.observe({ method: info.method, route: info.route }, info.durationMs / 1000);
  };

  readonly replication: ReplicationMetricsHooks = {
    published: (stream) => this.rows.inc({ stream, direction: 'out' }),
    applied: (stream, lagMs) => {
      this.rows.inc({ stream, direction: 'in' });
      if (lagMs !== undefined) this.lag.observe({ stream }, Math.max(0, lagMs) / 1000);
    },
    caughtUp: (reason) => this.catchups.inc({ reason }),
  };

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A `type: metrics` listener: GET /metrics (or /_synapse/metrics). */
  async listen(host: string, port: number): Promise<Server> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' || (path !== '/metrics' && path !== '/_synapse/metrics' && path !== '/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      this.render().then(
        (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
        (e) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }
}
