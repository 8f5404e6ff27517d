/**
 * A minimal Matrix client-server API client for the load generator, on
 * `node:http`/`node:https` with kept-alive connections (one agent per
 * client; cheaper per request than fetch, whose own CPU on a small machine
 * competes with the server being measured).
 * It speaks only the public client-server API plus Synapse's shared-secret
 * registration admin API, so it can be pointed at any homeserver.
 */
import http from 'node:http';
import https from 'node:https';
import { registrationMac } from './mac.js';
import { sleep } from './util.js';

export class MatrixHttpError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly errcode: string | undefined,
    readonly body: unknown,
  ) {
    const err = (body as { error?: unknown } | undefined)?.error;
    super(`${method} ${redact(path)} -> ${status}${errcode ? ' ' + errcode : ''}${typeof err === 'string' ? ': ' + err : ''}`);
  }
}

/** The target could not be reached at all (connection refused, DNS, TLS, timeout). */
export class UnreachableError extends Error {}

export interface Response<T = any> {
  status: number;
  json: T;
  /** Bytes of the (decoded) response body. */
  bytes: number;
  ms: number;
}

export interface RequestOptions {
  body?: unknown;
  token?: string;
  query?: Record<string, string | number | undefined>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Status codes that are returned instead of thrown (besides 2xx). */
  accept?: number[];
}

function redact(path: string): string {
  return path.replace(/access_token=[^&]*/g, 'access_token=<redacted>');
}


interface Exchange {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

interface RawResponse {
  status: number;
  retryAfter: string | undefined;
  body: Buffer;
}

/** The request took longer than its timeout (the connection is destroyed). */
class RequestTimeout extends Error {}

/** Headers of a request without a token or body: shared, node:http only reads them. */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** `?k=v&…` of the defined query values ('' when there are none). */
export function queryString(query: Record<string, string | number | undefined> | undefined): string {
  let out = '';
  if (query)
    for (const k in query) {
      const v = query[k];
      if (v !== undefined) out += `${out ? '&' : '?'}${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`;
    }
  return out;
}

export class HttpClient {
  /** 429 responses seen (each is retried after retry_after_ms). */
  rateLimited = 0;
  maxRetries = 20;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  /** Parsed once: host, port and path prefix of the base URL. */
  private readonly hostname: string;
  private readonly port: string;
  private readonly basePath: string;
  private readonly origin: string;

  constructor(readonly baseUrl: string) {
    const url = new URL(baseUrl);
    const opts = { keepAlive: true, maxSockets: 256, maxFreeSockets: 256 };
    const tls = url.protocol === 'https:';
    this.agent = tls ? new https.Agent(opts) : new http.Agent(opts);
    this.transport = tls ? https : http;
    // URL keeps IPv6 literals bracketed; the socket wants them bare.
    this.hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = url.port;
    this.basePath = url.pathname.replace(/\/$/, '');
    this.origin = url.origin;
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<Response<T>> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    let headers = NO_HEADERS;
    if (opts.token || body !== undefined) {
      headers = {};
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
      }
    }
    const x: Exchange = {
      method,
      path: this.basePath + path + queryString(opts.query),
      headers,
      body,
      timeoutMs: opts.timeoutMs ?? 60_000,
      signal: opts.signal,
    };
    const t0 = performance.now();
    for (let attempt = 0; ; attempt++) {
      let res: RawResponse;
      try {
        res = await this.exchange(x);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        const err = e as { code?: string; message?: string };
        const why = e instanceof RequestTimeout ? err.message : (err.code ?? err.message);
        throw new UnreachableError(`${method} ${this.origin}${redact(path)} failed: ${why}`);
      }
      const buf = res.body;
      let json: any;
      try {
        json = buf.length ? JSON.parse(buf.toString('utf8')) : undefined;
      } catch {
        json = undefined;
      }
      if (res.status === 429 && attempt < this.maxRetries) {
        this.rateLimited++;
        const wait = Number(json?.retry_after_ms ?? Number(res.retryAfter ?? 1) * 1000);
        await sleep(Math.min(Number.isFinite(wait) ? wait : 1000, 10_000));
        continue;
      }
      const ms = performance.now() - t0;
      if ((res.status >= 200 && res.status < 300) || opts.accept?.includes(res.status))
        return { status: res.status, json, bytes: buf.length, ms };
      throw new MatrixHttpError(method, path, res.status, json?.errcode, json);
    }
  }

  /**
   * One HTTP exchange on a kept-alive connection; rejects on connection
   * errors, after `timeoutMs` for the whole exchange (a plain timer that
   * destroys the request), or when the signal aborts.
   */
  private exchange(x: Exchange): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        { hostname: this.hostname, port: this.port, path: x.path, method: x.method, headers: x.headers, agent: this.agent, signal: x.signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            const ra = res.headers['retry-after'];
            const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(ra) ? ra[0] : ra, body });
          });
          res.on('error', fail);
        },
      );
      function fail(e: Error): void {
        clearTimeout(timer);
        reject(e);
      }
      // Rejects first, so the timeout (not the reset it causes) is the reason given.
      const timer = setTimeout(() => {
        reject(new RequestTimeout(`timed out after ${x.timeoutMs} ms`));
        req.destroy();
      }, x.timeoutMs);
      req.on('error', fail);
      req.end(x.body);
    });
  }
}

export interface Session {
  userId: string;
  accessToken: string;
  deviceId?: string;
}

const enc = encodeURIComponent;
const C = '/_matrix/client/v3';

export class MatrixApi {
  constructor(readonly http: HttpClient) {}

  versions(): Promise<Response<{ versions: string[] }>> {
    return this.http.request('GET', '/_matrix/client/versions', { timeoutMs: 10_000 });
  }

  whoami(s: Session): Promise<Response<{ user_id: string }>> {
    return this.http.request('GET', `${C}/account/whoami`, { token: s.accessToken });
  }

  /** Register through Synapse's shared-secret admin API. */
  async registerWithSharedSecret(secret: string, username: string, password: string): Promise<Session> {
    const path = '/_synapse/admin/v1/register';
    const { json: n } = await this.http.request<{ nonce: string }>('GET', path);
    if (typeof n?.nonce !== 'string') throw new Error(`GET ${path} returned no nonce`);
    const mac = registrationMac(secret, n.nonce, username, password, false);
    const { json } = await this.http.request('POST', path, {
      body: { nonce: n.nonce, username, password, admin: false, mac },
    });
    return toSession(json);
  }

  /**
   * Open registration: POST /register; if the server answers 401 with
   * user-interactive auth, complete it with a flow made only of
   * m.login.dummy stages. Any other flow cannot be completed by a bench.
   */
  async registerOpen(username: string, password: string): Promise<Session> {
    const body = { username, password, initial_device_display_name: 'myelin-bench', inhibit_login: false };
    const path = `${C}/register`;
    const first = await this.http.request('POST', path, { body, query: { kind: 'user' }, accept: [401] });
    if (first.status === 200) return toSession(first.json);
    const flows: { stages: string[] }[] = first.json?.flows ?? [];
    const dummyOnly = flows.find((f) => f.stages.length > 0 && f.stages.every((s) => s === 'm.login.dummy'));
    if (!dummyOnly) {
      throw new MatrixHttpError('POST', path, 401, 'M_FORBIDDEN', {
        error: `open registration needs stages the bench cannot complete (${flows.map((f) => f.stages.join('+')).join(' | ') || 'no flows'}); give --shared-secret`,
      });
    }
    let session: string | undefined = first.json?.session;
    let res: Response | undefined;
    for (let i = 0; i < dummyOnly.stages.length; i++) {
      res = await this.http.request('POST', path, {
        body: { ...body, auth: { type: 'm.login.dummy', session } },
        query: { kind: 'user' },
        accept: [401],
      });
      if (res.status === 200) return toSession(res.json);
      session = res.json?.session ?? session;
    }
    throw new MatrixHttpError('POST', path, res?.status ?? 401, res?.json?.errcode, res?.json);
  }

  async createRoom(s: Session, body: Record<string, unknown>): Promise<string> {
    const { json } = await this.http.request('POST', `${C}/createRoom`, { token: s.accessToken, body });
    if (typeof json?.room_id !== 'string') throw new Error('createRoom returned no room_id');
    return json.room_id;
  }

  async join(s: Session, roomId: string): Promise<Response> {
    return this.http.request('POST', `${C}/join/${enc(roomId)}`, { token: s.accessToken, body: {} });
  }

  async leave(s: Session, roomId: string): Promise<Response> {
    return this.http.request('POST', `${C}/rooms/${enc(roomId)}/leave`, { token: s.accessToken, body: {} });
  }

  async send(s: Session, roomId: string, txnId: string, content: Record<string, unknown>): Promise<Response<{ event_id: string }>> {
    const res = await this.http.request('PUT', `${C}/rooms/${enc(roomId)}/send/m.room.message/${enc(txnId)}`, {
      token: s.accessToken,
      body: content,
    });
    if (typeof res.json?.event_id !== 'string') throw new Error('send returned no event_id');
    return res;
  }

  /** POST /login with a password, as a new device of an existing user. */
  async login(userId: string, password: string, deviceId?: string): Promise<Session> {
    const { json } = await this.http.request('POST', `${C}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: userId }, password, ...(deviceId ? { device_id: deviceId } : {}) },
    });
    return toSession(json);
  }

  keysUpload(s: Session, body: Record<string, unknown>): Promise<Response<{ one_time_key_counts: Record<string, number> }>> {
    return this.http.request('POST', `${C}/keys/upload`, { token: s.accessToken, body });
  }

  keysQuery(s: Session, deviceKeys: Record<string, string[]>): Promise<Response<{ device_keys: Record<string, Record<string, unknown>>; failures?: object }>> {
    return this.http.request('POST', `${C}/keys/query`, { token: s.accessToken, body: { device_keys: deviceKeys } });
  }

  keysClaim(s: Session, oneTimeKeys: Record<string, Record<string, string>>): Promise<Response<{ one_time_keys: Record<string, Record<string, unknown>>; failures?: object }>> {
    return this.http.request('POST', `${C}/keys/claim`, { token: s.accessToken, body: { one_time_keys: oneTimeKeys } });
  }

  async uploadFilter(s: Session, filter: Record<string, unknown>): Promise<string> {
    const { json } = await this.http.request('POST', `${C}/user/${enc(s.userId)}/filter`, { token: s.accessToken, body: filter });
    if (typeof json?.filter_id !== 'string') throw new Error('filter upload returned no filter_id');
    return json.filter_id;
  }

  sync(
    s: Session,
    q: { since?: string; filter?: string; timeout?: number; full_state?: boolean },
    signal?: AbortSignal,
  ): Promise<Response<SyncResponse>> {
    return this.http.request('GET', `${C}/sync`, {
      token: s.accessToken,
      query: { since: q.since, filter: q.filter, timeout: q.timeout, full_state: q.full_state ? 'true' : undefined },
      timeoutMs: (q.timeout ?? 0) + 60_000,
      signal,
    });
  }

  messages(
    s: Session,
    roomId: string,
    q: { from?: string; dir: 'b' | 'f'; limit: number; filter?: string },
  ): Promise<Response<{ chunk: MatrixEvent[]; start?: string; end?: string }>> {
    return this.http.request('GET', `${C}/rooms/${enc(roomId)}/messages`, {
      token: s.accessToken,
      query: { from: q.from, dir: q.dir, limit: q.limit, filter: q.filter },
    });
  }
}

export interface MatrixEvent {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, any>;
  origin_server_ts?: number;
}

export interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, { timeline?: { events?: MatrixEvent[]; limited?: boolean; prev_batch?: string } }>;
    invite?: Record<string, unknown>;
    leave?: Record<string, unknown>;
  };
}

function toSession(json: any): Session {
  if (typeof json?.user_id !== 'string' || typeof json?.access_token !== 'string')
    throw new Error('registration returned no user_id/access_token');
  return { userId: json.user_id, accessToken: json.access_token, deviceId: json.device_id };
}
