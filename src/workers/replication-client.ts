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
import type { Pool } from 'undici';
import { instanceLocation } from '../config/workers.js';
import type { HomeserverConfig } from '../config/schema.js';
import { MatrixError } from '../util/errors.js';
import { normaliseInstance } from './streams.js';

/** One POST: the answer's status and body text; rejects on a network error or timeout. */
export type HttpPost = (url: string, headers: Record<string, string>, body: string, timeoutMs: number) => Promise<{ status: number; text: string }>;

export interface ReplicationClientOptions {
  config: Pick<HomeserverConfig, 'instance_map' | 'worker_replication_host' | 'worker_replication_http_port' | 'worker_replication_http_tls' | 'worker_replication_secret'>;
  logger?: Logger;
  /** Attempts in all (default 6: about 3 s of backoff). */
  attempts?: number;
  /** First backoff delay, doubled each retry (default 100 ms). */
  backoffMs?: number;
  /** Per-attempt timeout (default 60 s: event persistence may wait on locks). */
  timeoutMs?: number;
  /** Replaces the built-in HTTP client (tests). */
  post?: HttpPost;
}

// One undici connection pool per target origin (http or https), kept-alive
// connections, one request at a time on each. node:http's request/response
// objects cost 1.5 to 2.5 times the client CPU per forwarded write, and fetch
// (web streams, an AbortSignal per call) more still.
// undici is loaded at the first call: a process that never forwards a write
// (a monolith) does not carry it (about 20 MiB of RSS once loaded).
const MAX_CONNECTIONS = 64;
const pools = new Map<string, Pool>();
let undici: Promise<typeof import('undici')> | undefined;

async function poolFor(origin: string): Promise<{ pool: Pool; errors: (typeof import('undici'))['errors'] }> {
  const { Pool: PoolClass, errors } = await (undici ??= import('undici'));
  let pool = pools.get(origin);
  if (!pool) {
    pool = new PoolClass(origin, { connections: MAX_CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });
    pools.set(origin, pool);
  }
  return { pool, errors };
}

/** Closes the pools (their kept-alive connections); later calls open new ones. */
export async function closeReplicationPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.close().catch(() => undefined)));
}

async function postOnce(pool: Pool, path: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const res = await pool.request({ method: 'POST', path, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  return { status: res.statusCode, text: await res.body.text() };
}

/**
 * The default: a POST through the target origin's pool. A kept-alive
 * connection that the other side closed before answering is sent again at
 * once on a new one (the caller's transaction id makes a repeat harmless);
 * other failures reject, for the caller's backoff.
 */
export const defaultPost: HttpPost = async (url, headers, body, timeoutMs) => {
  // `http(s)://host:port/path`: the origin part keys the pool.
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  const origin = slash < 0 ? url : url.slice(0, slash);
  const path = slash < 0 ? '/' : url.slice(slash);
  const { pool, errors } = await poolFor(origin);
  try {
    return await postOnce(pool, path, headers, body, timeoutMs);
  } catch (e) {
    if (e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError) throw new Error(`no answer within ${timeoutMs} ms`);
    if (!(e instanceof errors.SocketError)) throw e;
    return await postOnce(pool, path, headers, body, timeoutMs);
  }
};

export class ReplicationUnavailableError extends MatrixError {
  constructor(instance: string, endpoint: string, cause: string) {
    super(502, 'M_UNKNOWN', `Replication to ${instance} (${endpoint}) failed: ${cause}`);
  }
}

// Unique per process (random, drawn once) and per call (a counter): no
// random draw per forwarded write.
const TXN_PREFIX = `${Date.now().toString(36)}-${randomBytes(9).toString('base64url')}`;
let txnCounter = 0;

export function newTxnId(): string {
  return `${TXN_PREFIX}-${(++txnCounter).toString(36)}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ReplicationClient {
  /** Base URL per instance name (instance_map does not change while running). */
  private readonly bases = new Map<string, string>();
  private headers: Record<string, string> | undefined;

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
    let base = this.bases.get(instanceName);
    if (base === undefined) this.bases.set(instanceName, (base = this.urlOf(instanceName)));
    const url = `${base}/_synapse/replication/${encodeURIComponent(endpointName)}/${encodeURIComponent(txnId)}`;
    let headers = this.headers;
    if (!headers) {
      headers = { 'content-type': 'application/json' };
      if (this.opts.config.worker_replication_secret) headers.authorization = `Bearer ${this.opts.config.worker_replication_secret}`;
      this.headers = headers;
    }
    const payload = JSON.stringify(body ?? {});
    const attempts = this.opts.attempts ?? 6;
    const post = this.opts.post ?? defaultPost;
    let lastError = 'no attempt';
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep((this.opts.backoffMs ?? 100) * 2 ** (attempt - 1));
      let res: { status: number; text: string };
      try {
        res = await post(url, headers, payload, this.opts.timeoutMs ?? 60_000);
      } catch (e) {
        lastError = (e as Error).message;
        this.opts.logger?.warn(`replication ${endpointName} to ${instanceName} failed (attempt ${attempt + 1}/${attempts}): ${lastError}`);
        continue;
      }
      const text = res.text;
      let json: any;
      try {
        json = text.length ? JSON.parse(text) : {};
      } catch {
        json = undefined;
      }
      if (res.status >= 200 && res.status < 300) {
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
