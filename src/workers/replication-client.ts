/**
 * HTTP replication client (DESIGN.md §4): calls another instance's
 * replication listener, `POST http://<instance_map host:port>/_synapse/replication/<name>/<txnId>`,
 * with `Authorization: Bearer <worker_replication_secret>` when a secret is
 * configured. Network errors and 5xx answers are retried with exponential
 * backoff under the SAME transaction id, so the target runs the write once.
 * A Matrix error answer (4xx) is rethrown as that MatrixError, so it reaches
 * the client unchanged.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { instanceLocation } from '../config/workers.js';
import type { HomeserverConfig } from '../config/schema.js';
import { MatrixError } from '../util/errors.js';
import { normaliseInstance } from './streams.js';

export interface ReplicationClientOptions {
  config: Pick<HomeserverConfig, 'instance_map' | 'worker_replication_host' | 'worker_replication_http_port' | 'worker_replication_http_tls' | 'worker_replication_secret'>;
  logger?: Logger;
  /** Attempts in all (default 6: about 3 s of backoff). */
  attempts?: number;
  /** First backoff delay, doubled each retry (default 100 ms). */
  backoffMs?: number;
  /** Per-attempt timeout (default 60 s: event persistence may wait on locks). */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

export class ReplicationUnavailableError extends MatrixError {
  constructor(instance: string, endpoint: string, cause: string) {
    super(502, 'M_UNKNOWN', `Replication to ${instance} (${endpoint}) failed: ${cause}`);
  }
}

export function newTxnId(): string {
  return `${Date.now().toString(36)}-${randomBytes(9).toString('base64url')}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ReplicationClient {
  constructor(private readonly opts: ReplicationClientOptions) {}

  /** The base URL of an instance's replication listener. */
  urlOf(instance: string): string {
    const loc = instanceLocation(this.opts.config, normaliseInstance(instance));
    if (!loc) throw new ReplicationUnavailableError(instance, '-', 'the instance is not in instance_map');
    const host = loc.host.includes(':') && !loc.host.startsWith('[') ? `[${loc.host}]` : loc.host;
    return `${loc.tls ? 'https' : 'http'}://${host}:${loc.port}`;
  }

  /**
   * Calls `endpointName` on `instanceName` and returns its JSON answer.
   * Give a txnId derived from the client's own transaction when there is one
   * (e.g. the client's PUT txnId) so that even a retried client request
   * stays idempotent; otherwise a fresh one is made for this call.
   */
  async call<T = any>(instanceName: string, endpointName: string, body: unknown, txnId: string = newTxnId()): Promise<T> {
    const url = `${this.urlOf(instanceName)}/_synapse/replication/${encodeURIComponent(endpointName)}/${encodeURIComponent(txnId)}`;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.config.worker_replication_secret) headers.authorization = `Bearer ${this.opts.config.worker_replication_secret}`;
    const payload = JSON.stringify(body ?? {});
    const attempts = this.opts.attempts ?? 6;
    const doFetch = this.opts.fetchImpl ?? fetch;
    let lastError = 'no attempt';
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep((this.opts.backoffMs ?? 100) * 2 ** (attempt - 1));
      let res: Response;
      try {
        res = await doFetch(url, { method: 'POST', headers, body: payload, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 60_000) });
      } catch (e) {
        lastError = (e as Error).message;
        this.opts.logger?.warn(`replication ${endpointName} to ${instanceName} failed (attempt ${attempt + 1}/${attempts}): ${lastError}`);
        continue;
      }
      const text = await res.text();
      let json: any;
      try {
        json = text.length ? JSON.parse(text) : {};
      } catch {
        json = undefined;
      }
      if (res.ok) {
        if (json === undefined) throw new ReplicationUnavailableError(instanceName, endpointName, 'answer is not JSON');
        return json as T;
      }
      if (res.status >= 500) {
        lastError = `HTTP ${res.status}`;
        continue;
      }
      // A definite answer: pass the Matrix error through.
      const { errcode, error, ...extra } = json && typeof json === 'object' ? json : ({} as any);
      throw new MatrixError(res.status, typeof errcode === 'string' ? errcode : 'M_UNKNOWN', typeof error === 'string' ? error : `replication ${endpointName}: HTTP ${res.status}`, extra);
    }
    throw new ReplicationUnavailableError(instanceName, endpointName, lastError);
  }
}
