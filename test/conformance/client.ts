/**
 * A raw HTTP client whose every response is checked against the spec:
 * the status must be the one the test expects, the body must match the
 * OpenAPI response schema for that status, and every event inside it with a
 * schema in event-schemas/ must match that schema. Problems are collected in
 * `violations` (readable, one per line) so a test can assert on all at once.
 */
import { RawClient, type HttpResult } from '../helpers/http.js';
import { checkEvent, checkResponse } from './spec.js';

export interface CallOpts {
  /** Expected status (default 200). */
  status?: number;
  /** Expected errcode for error responses. */
  errcode?: string;
  token?: string | null;
  raw?: string;
}

export class ConformClient {
  readonly violations: string[] = [];
  /** How many events were checked against an event schema (to prove coverage). */
  eventsChecked = 0;
  readonly eventTypesChecked = new Set<string>();
  /** Operations exercised, "METHOD template status". */
  readonly covered = new Set<string>();

  constructor(
    readonly raw: RawClient,
    readonly shared?: ConformClient,
  ) {}

  as(token: string | undefined): ConformClient {
    return new ConformClient(this.raw.withToken(token), this.shared ?? this);
  }

  private get root(): ConformClient {
    return this.shared ?? this;
  }

  private record(line: string): void {
    this.violations.push(line);
    if (this.shared) this.shared.violations.push(line);
  }

  async call<T = any>(method: string, path: string, body?: unknown, opts: CallOpts = {}): Promise<HttpResult<T>> {
    const r = await this.raw.request<T>(method, path, body, { token: opts.token, ...(opts.raw !== undefined ? { raw: opts.raw, headers: { 'content-type': 'application/json' } } : {}) });
    const label = `${method} ${path.split('?')[0]}`;
    const want = opts.status ?? 200;
    if (r.status !== want) this.record(`${label}: status ${r.status}, expected ${want} — body ${JSON.stringify(r.body)?.slice(0, 300)}`);
    if (opts.errcode && (r.body as any)?.errcode !== opts.errcode) this.record(`${label}: errcode ${(r.body as any)?.errcode}, expected ${opts.errcode}`);
    const c = checkResponse(method, path, r.status, r.body);
    this.root.covered.add(`${c.schema}`);
    for (const e of c.errors) this.record(`${label} [${c.schema}]: ${e}`);
    if (r.status < 300) this.checkEvents(label, r.body, roomIdFromPath(path));
    return r;
  }

  get<T = any>(path: string, opts?: CallOpts) {
    return this.call<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body?: unknown, opts?: CallOpts) {
    return this.call<T>('POST', path, body ?? {}, opts);
  }
  put<T = any>(path: string, body?: unknown, opts?: CallOpts) {
    return this.call<T>('PUT', path, body ?? {}, opts);
  }
  delete<T = any>(path: string, body?: unknown, opts?: CallOpts) {
    return this.call<T>('DELETE', path, body, opts);
  }

  /**
   * Walks a response body and validates every event that has a schema.
   * An event is an object with a string `type` and object `content`. Stripped
   * state (invite_state: a `sender` but no `event_id`) has no event schema of
   * its own and is skipped. Room keys ("!...") in /sync give the room id that
   * /sync omits from its events.
   */
  checkEvents(label: string, node: unknown, roomId: string | undefined, path = ''): void {
    if (Array.isArray(node)) {
      node.forEach((n, i) => this.checkEvents(label, n, roomId, `${path}/${i}`));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, any>;
    const isEvent = typeof o.type === 'string' && o.content !== null && typeof o.content === 'object' && !Array.isArray(o.content);
    if (isEvent && !(o.sender !== undefined && o.event_id === undefined)) {
      const c = checkEvent(o, o.event_id !== undefined ? (o.room_id ?? roomId) : undefined);
      if (c) {
        this.root.eventsChecked++;
        this.root.eventTypesChecked.add(o.type);
        for (const e of c.errors) this.record(`${label} event ${o.type} at ${path || '(root)'} [${c.schema}]: ${e}`);
      }
    }
    for (const [k, v] of Object.entries(o)) {
      if (isEvent && (k === 'content' || k === 'prev_content')) continue;
      this.checkEvents(label, v, k.startsWith('!') ? k : roomId, `${path}/${k}`);
    }
  }
}

function roomIdFromPath(path: string): string | undefined {
  const m = /\/rooms\/([^/?]+)/.exec(path);
  return m ? decodeURIComponent(m[1]!) : undefined;
}
