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
import * as http from 'node:http';
import * as https from 'node:https';
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
  /** Replaces the built-in HTTP client (tests). */
  post?: HttpPost;
}

/** One POST: the answer's status and body text; rejects on a network error or timeout. */
export type HttpPost = (url: string, headers: Record<string, string>, body: string, timeoutMs: number) => Promise<{ status: number; text: string }>;

// Kept-alive connections to the other instances. node:http rather than
// fetch: fetch (web streams, an AbortSignal per call) cost several times the
// CPU per call, and every forwarded write makes one.
const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/** Where one instance's replication listener is, parsed once (no URL parsing per call). */
interface PostTarget {
  tls: boolean;
  hostname: string;
  port: number;
}

/** One POST to `path` on a parsed target (the built-in client). */
function postTo(t: PostTarget, path: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = (t.tls ? https : http).request(
      {
        method: 'POST',
        hostname: t.hostname,
        port: t.port,
        path,
        agent: t.tls ? agents.https : agents.http,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

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
  /** Base URL and parsed target per instance name (instance_map does not change while running). */
  private readonly bases = new Map<string, { base: string; target: PostTarget }>();
  private headers: Record<string, string> | undefined;

  constructor(private readonly opts: ReplicationClientOptions) {}

  private locationOf(instance: string) {
    const loc = instanceLocation(this.opts.config, normaliseInstance(instance));
    if (!loc) throw new ReplicationUnavailableError(instance, '-', 'the instance is not in instance_map');
    return loc;
  }

  /** The base URL of an instance's replication listener. */
  urlOf(instance: string): string {
    const loc = this.locationOf(instance);
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
    let where = this.bases.get(instanceName);
    if (where === undefined) {
      const loc = this.locationOf(instanceName);
      // The socket wants an IPv6 literal without its brackets.
      const target = { tls: loc.tls, hostname: loc.host.replace(/^\[(.*)\]$/, '$1'), port: loc.port };
      this.bases.set(instanceName, (where = { base: this.urlOf(instanceName), target }));
    }
    const path = `/_synapse/replication/${encodeURIComponent(endpointName)}/${encodeURIComponent(txnId)}`;
    let headers = this.headers;
    if (!headers) {
      headers = { 'content-type': 'application/json' };
      if (this.opts.config.worker_replication_secret) headers.authorization = `Bearer ${this.opts.config.worker_replication_secret}`;
      this.headers = headers;
    }
    const payload = JSON.stringify(body ?? {});
    const attempts = this.opts.attempts ?? 6;
    const custom = this.opts.post;
    const { base, target } = where;
    const post = (h: Record<string, string>, b: string, ms: number) => (custom ? custom(`${base}${path}`, h, b, ms) : postTo(target, path, h, b, ms));
    let lastError = 'no attempt';
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep((this.opts.backoffMs ?? 100) * 2 ** (attempt - 1));
      let res: { status: number; text: string };
      try {
        res = await post(headers, payload, this.opts.timeoutMs ?? 60_000);
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
