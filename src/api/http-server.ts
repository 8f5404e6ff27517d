/**
 * Builds the HTTP server of one listener from route collections. Everything
 * every endpoint shares lives here: Matrix error bodies, 404/405
 * M_UNRECOGNIZED, body limits (M_TOO_LARGE), lazy JSON parsing (M_NOT_JSON,
 * M_BAD_JSON), access tokens from the header or the query, CORS and a request
 * log line with tokens redacted.
 */
import type { ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { MatrixError, Errors } from '../util/errors.js';
import { drainRequestBody } from './drain-body.js';
import type { WaitSignal } from '../streams/notifier-types.js';
import { HttpResponse, type Authenticator, type MatrixRequest, type Requester, type RouteDef } from './types.js';

/**
 * A request's signal (MatrixRequest.signal): aborted when its response
 * closes unfinished (the client went away). Not an AbortController: one is
 * made for every long-poll, and building an AbortSignal (an EventTarget)
 * and adding and removing its listeners showed in the /sync fan-out
 * profiles. A response that finished has no handler left to stop: it is
 * never aborted then (a signal first asked for after the response closed
 * starts aborted).
 */
class ResponseSignal implements WaitSignal {
  aborted = false;
  private listeners: Array<() => void> | undefined;

  constructor(res: ServerResponse) {
    if (res.destroyed || res.writableFinished) this.aborted = true;
    else res.once('close', () => res.writableFinished || this.abort());
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  private abort(): void {
    this.aborted = true;
    const ls = this.listeners;
    this.listeners = undefined;
    // Each listener once (what the notifier asks for with { once: true }), in order.
    for (const l of ls ?? []) l();
  }
}

export interface HttpServerOptions {
  logger: Logger;
  /** Process name, for the request log. */
  processName: string;
  authenticator?: Authenticator;
  /** Default limit for request bodies (JSON), bytes. */
  bodyLimit: number;
  /** Trust X-Forwarded-For (listener `x_forwarded`). */
  trustProxy: boolean;
  https?: { key: Buffer; cert: Buffer };
  /** Called for every finished request (metrics). */
  onRequestDone?: (info: { method: string; route: string; status: number; durationMs: number }) => void;
}

/**
 * CORS, as the client-server spec asks ("Web Browser Clients"): any origin,
 * on every response (set by the route handler and sendError, rather than by
 * a hook that every request would run through), and preflight answers for
 * every path.
 */
const CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Retry-After',
};
const CORS_PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization, Date',
  'access-control-max-age': '86400',
};

const TOKEN_IN_QUERY = /([?&](?:access_token|token|refresh_token)=)[^&]*/g;

export function redactPath(url: string): string {
  return url.includes('token=') ? url.replace(TOKEN_IN_QUERY, '$1<redacted>') : url;
}

function patternToRegExp(path: string): RegExp {
  const re = path
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]*' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${re}/?$`);
}

function tokenFrom(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  const q = (req.query as Record<string, unknown>)['access_token'];
  if (typeof q === 'string' && q.length) return q;
  if (Array.isArray(q) && typeof q[0] === 'string') return q[0];
  return undefined;
}

/**
 * Deepest JSON nesting accepted in a request body. Services walk bodies
 * recursively (canonical JSON, filters, push rules), so a body nested
 * thousands deep would overflow the stack (a 500); no Matrix body comes close.
 */
export const MAX_JSON_DEPTH = 100;

/** Nesting depth of JSON text (brackets outside strings), stopping once past `limit`. */
function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function parseJson(raw: Buffer | undefined): Record<string, any> {
  if (!raw || raw.length === 0) throw Errors.notJson('Request body is empty; expected a JSON object.');
  let value: unknown;
  const text = raw.toString('utf8');
  try {
    value = JSON.parse(text);
  } catch {
    throw Errors.notJson('Content not JSON.');
  }
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) throw Errors.badJson(`JSON nested deeper than ${MAX_JSON_DEPTH} levels.`);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw Errors.badJson('Expected a JSON object.');
  return value as Record<string, any>;
}

function noSchemas(): never {
  throw new Error('Myelin routes carry no JSON schemas: handlers validate their input');
}

export async function buildHttpServer(routes: RouteDef[], opts: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Requests log through the server's logger itself: a pino child per
    // request (for a request id that no log line of ours shows) cost more
    // than the rest of a cheap request's logging.
    childLoggerFactory: (logger: Logger) => logger,
    bodyLimit: opts.bodyLimit,
    routerOptions: { maxParamLength: 2000, ignoreTrailingSlash: true },
    trustProxy: opts.trustProxy,
    return503OnClosing: false,
    // No route carries a JSON schema (handlers validate their input and
    // answer Matrix errors), so Fastify's default compilers (ajv,
    // fast-json-stringify) are never needed: not loading them keeps about
    // 3 MiB of code and module source out of every process's heap.
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
    // Malformed percent-encoding or an over-long path parameter: a Matrix
    // error instead of Fastify's own body.
    frameworkErrors: (err: any, _req: FastifyRequest, reply: FastifyReply) =>
      sendError(reply, Errors.invalidParam(err?.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'Path parameter too long' : 'Malformed URL path')),
    ...(opts.https ? { https: opts.https } : {}),
  } as any) as unknown as FastifyInstance;

  // CORS preflight for every path (the other responses carry CORS_HEADERS).
  app.options('*', (req, reply) => {
    if (!req.headers.origin || !req.headers['access-control-request-method']) {
      reply.code(400).headers(CORS_HEADERS).type('text/plain').send('Invalid Preflight Request');
      return;
    }
    reply.code(204).headers(CORS_HEADERS).headers(CORS_PREFLIGHT_HEADERS).header('content-length', '0').send();
  });

  // Bodies arrive as buffers; handlers parse JSON lazily so that the errors
  // are Matrix errors and media uploads get raw bytes.
  app.removeAllContentTypeParsers();
  const asBuffer = (_req: FastifyRequest, body: Buffer, done: (err: null, body: Buffer) => void) => done(null, body);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, asBuffer);
  // The same parser under the type nearly every body has: Fastify remembers
  // the parser of a named type, but looks the catch-all up afresh (parsing
  // the header again) on every request.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, asBuffer);

  const patterns = routes.map((r) => patternToRegExp(r.path));

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const known = patterns.some((p) => p.test(path));
    sendError(reply, Errors.unrecognized(known ? 405 : 404));
  });

  app.setErrorHandler((err: any, req, reply) => {
    if (err instanceof MatrixError) return sendError(reply, err);
    const code: string | undefined = err?.code;
    // Safety net: PostgreSQL refuses text it cannot store (a NUL character,
    // invalid UTF-8) that a handler let through. That is bad input, not a
    // server fault; the failed statement's transaction has rolled back.
    if ((code === '22021' || code === '22P05') && typeof err?.severity === 'string') {
      req.log.warn({ url: redactPath(req.url) }, `database refused input text: ${err.message}`);
      return sendError(reply, Errors.invalidParam('Text contains characters that cannot be stored (e.g. NUL)'));
    }
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // The answer closes the connection: read (and discard) what the client
      // is still sending first, so that it gets to read the 413.
      void drainRequestBody(req.raw).then(() => {
        if (!reply.sent && !req.raw.socket?.destroyed) sendError(reply, Errors.tooLarge('Request body too large'));
      });
      return;
    }
    if (code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(reply, Errors.notJson());
    }
    const status = typeof err?.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err, url: redactPath(req.url) }, 'request failed');
      return sendError(reply, new MatrixError(500, 'M_UNKNOWN', 'Internal server error'));
    }
    return sendError(reply, new MatrixError(status, 'M_UNKNOWN', err?.message ?? 'Bad request'));
  });

  app.addHook('onResponse', (req, reply, done) => {
    const durationMs = reply.elapsedTime;
    const user = (req as any).myelinUser as string | undefined;
    opts.logger.info(
      `${opts.processName} ${req.ip} ${req.method} ${redactPath(req.url)} ${reply.statusCode} ${durationMs.toFixed(1)}ms${user ? ' ' + user : ''}`,
    );
    if (opts.onRequestDone) {
      opts.onRequestDone({ method: req.method, route: req.routeOptions?.url ?? 'unknown', status: reply.statusCode, durationMs });
    }
    done();
  });

  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.path,
      bodyLimit: route.options.bodyLimit,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const mreq = await toMatrixRequest(req, reply, route, opts.authenticator);
        const result = await route.handler(mreq);
        if (reply.sent) return reply;
        reply.headers(CORS_HEADERS);
        if (result instanceof HttpResponse) {
          reply.code(result.status);
          for (const [k, v] of Object.entries(result.headers)) reply.header(k, v);
          if (Buffer.isBuffer(result.body) || typeof (result.body as any)?.pipe === 'function') return reply.send(result.body);
          return reply.type('application/json').send(JSON.stringify(result.body ?? {}));
        }
        return reply.type('application/json').send(JSON.stringify(result ?? {}));
      },
    });
  }
  return app;
}

function hasNul(v: unknown): boolean {
  return typeof v === 'string' && v.includes('\u0000');
}

function sendError(reply: FastifyReply, err: MatrixError): void {
  reply.headers(CORS_HEADERS);
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  reply.code(err.status).type('application/json').send(JSON.stringify(err.toJSON()));
}

/**
 * What a handler sees of a request. One object per request, its methods on
 * the prototype (a cheap request allocates little).
 */
class RequestView implements MatrixRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: FastifyRequest['headers'];
  readonly ip: string;
  private parsed: Record<string, any> | undefined;
  private closeSignal: ResponseSignal | undefined;

  constructor(
    req: FastifyRequest,
    private readonly reply: FastifyReply,
    readonly params: Record<string, string>,
    readonly query: Record<string, string | undefined>,
    private readonly rawQuery: Record<string, string | string[]>,
    readonly rawBody: Buffer | undefined,
    readonly maybeRequester: Requester | undefined,
    readonly accessToken: string | undefined,
  ) {
    this.method = req.method;
    const url = req.url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.headers = req.headers;
    this.ip = req.ip;
  }

  queryAll(name: string): string[] {
    const v = this.rawQuery[name];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }

  json(): Record<string, any> {
    return (this.parsed ??= parseJson(this.rawBody));
  }

  jsonOrEmpty(): Record<string, any> {
    return this.rawBody && this.rawBody.length ? this.json() : {};
  }

  get requester(): Requester {
    if (!this.maybeRequester) throw Errors.missingToken();
    return this.maybeRequester;
  }

  /**
   * Fires when the response closes unfinished (the client went away). Made
   * only for handlers that read it (long-polls): a listener on every
   * request costs.
   */
  get signal(): WaitSignal {
    return (this.closeSignal ??= new ResponseSignal(this.reply.raw));
  }
}

async function toMatrixRequest(
  req: FastifyRequest,
  reply: FastifyReply,
  route: RouteDef,
  authenticator?: Authenticator,
): Promise<MatrixRequest> {
  const rawQuery = (req.query ?? {}) as Record<string, string | string[]>;
  const query: Record<string, string | undefined> = {};
  let queryNul = false;
  for (const k in rawQuery) {
    const v = rawQuery[k]!;
    if (Array.isArray(v)) {
      query[k] = v[0];
      if (v.some(hasNul)) queryNul = true;
    } else {
      query[k] = v;
      if (hasNul(v)) queryNul = true;
    }
  }
  const rawBody = Buffer.isBuffer(req.body) ? req.body : undefined;
  const token = tokenFrom(req);
  const authMode = route.options.auth ?? 'none';
  let requester: Requester | undefined;
  if (authMode !== 'none') {
    if (token === undefined) {
      if (authMode === 'required') throw Errors.missingToken();
    } else {
      if (!authenticator) throw Errors.unknownToken();
      requester = await authenticator.authenticate(token, { ip: req.ip, userAgent: req.headers['user-agent'] });
      if (requester.isGuest && !route.options.allowGuest) throw Errors.guestAccessForbidden();
      (req as any).myelinUser = requester.userId;
    }
  }
  const params: Record<string, string> = {};
  const rawParams = (req.params ?? {}) as Record<string, string>;
  let paramNul = false;
  for (const k in rawParams) {
    const v = rawParams[k]!;
    params[k] = v;
    if (hasNul(v)) paramNul = true;
  }
  // No Matrix identifier, type or token contains NUL; the databases cannot
  // look it up either (PostgreSQL rejects it in text).
  if (paramNul) throw Errors.invalidParam('Path parameters must not contain NUL');
  if (queryNul) throw Errors.invalidParam('Query parameters must not contain NUL');
  return new RequestView(req, reply, params, query, rawQuery, rawBody, requester, token);
}
