/**
 * What HTTP handlers see: a small, framework-free request and a result.
 * Handlers are thin: parse and validate, call a service, return JSON.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { WaitSignal } from '../streams/notifier-types.js';

export interface Requester {
  userId: string;
  deviceId: string | null;
  isGuest: boolean;
  /** Id of the access token row (for logout, refresh). */
  tokenId: number;
  /** Set when an application service made the request. */
  appserviceId?: string;
}

export interface Authenticator {
  /** Resolves an access token, or throws MatrixError (M_UNKNOWN_TOKEN) when it is not valid. */
  authenticate(token: string, req: { ip: string; userAgent?: string }): Promise<Requester>;
}

export interface MatrixRequest {
  method: string;
  /** Path without the query string, still percent-encoded. */
  path: string;
  params: Record<string, string>;
  /** First value of each query parameter. */
  query: Record<string, string | undefined>;
  /** Every value of a repeated query parameter. */
  queryAll(name: string): string[];
  headers: IncomingHttpHeaders;
  ip: string;
  rawBody: Buffer | undefined;
  /** The body parsed as a JSON object (M_NOT_JSON / M_BAD_JSON otherwise). */
  json(): Record<string, any>;
  /** The body as JSON if there is one, else {}. */
  jsonOrEmpty(): Record<string, any>;
  /** The authenticated user (routes with auth 'required'); throws otherwise. */
  requester: Requester;
  /** The requester when auth is 'optional' and a token was given. */
  maybeRequester: Requester | undefined;
  accessToken: string | undefined;
  /** Aborted when the client goes away (long-polls stop waiting). */
  signal: WaitSignal;
}

export class HttpResponse {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

export function respond(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return new HttpResponse(status, body, headers);
}

export type Handler = (req: MatrixRequest) => Promise<unknown> | unknown;

export type AuthMode = 'none' | 'optional' | 'required';

export interface RouteOptions {
  auth?: AuthMode;
  /** Guests may call this endpoint (only matters with auth). */
  allowGuest?: boolean;
  /** Largest accepted body in bytes (defaults to the server's JSON limit). */
  bodyLimit?: number;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteDef {
  method: Method;
  path: string;
  handler: Handler;
  options: RouteOptions;
}

/** Collects the routes of one resource (client, federation, keys, media, ...). */
export class Router {
  readonly routes: RouteDef[] = [];

  private add(method: Method, paths: string | string[], handler: Handler, options: RouteOptions = {}): void {
    for (const path of Array.isArray(paths) ? paths : [paths]) this.routes.push({ method, path, handler, options });
  }

  get(paths: string | string[], handler: Handler, options?: RouteOptions): void {
    this.add('GET', paths, handler, options);
  }
  post(paths: string | string[], handler: Handler, options?: RouteOptions): void {
    this.add('POST', paths, handler, options);
  }
  put(paths: string | string[], handler: Handler, options?: RouteOptions): void {
    this.add('PUT', paths, handler, options);
  }
  delete(paths: string | string[], handler: Handler, options?: RouteOptions): void {
    this.add('DELETE', paths, handler, options);
  }
}

/**
 * Client-server API paths for an endpoint under the given versions, e.g.
 * `clientPaths('/account/whoami')` -> r0 and v3 paths.
 */
export function clientPaths(path: string, versions: string[] = ['r0', 'v3']): string[] {
  return versions.map((v) => `/_matrix/client/${v}${path}`);
}

/** v1-only client endpoints (relations, threads, hierarchy, ...). */
export function clientV1Paths(path: string): string[] {
  return clientPaths(path, ['v1']);
}
