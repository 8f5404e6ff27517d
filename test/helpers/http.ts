/** A tiny raw-HTTP Matrix client for end-to-end tests. */
export interface HttpResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class RawClient {
  constructor(
    readonly baseUrl: string,
    public accessToken?: string,
  ) {}

  withToken(token: string | undefined): RawClient {
    return new RawClient(this.baseUrl, token);
  }

  async request<T = any>(method: string, path: string, body?: unknown, opts: { raw?: string | Buffer; headers?: Record<string, string>; token?: string | null } = {}): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const token = opts.token === null ? undefined : (opts.token ?? this.accessToken);
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.baseUrl + path, { method, headers, body: payload as any });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text.length ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  get<T = any>(path: string, opts?: { token?: string | null }) {
    return this.request<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body?: unknown, opts?: { token?: string | null; raw?: string | Buffer; headers?: Record<string, string> }) {
    return this.request<T>('POST', path, body, opts);
  }
  put<T = any>(path: string, body?: unknown, opts?: { token?: string | null; raw?: string | Buffer; headers?: Record<string, string> }) {
    return this.request<T>('PUT', path, body, opts);
  }
  delete<T = any>(path: string, body?: unknown, opts?: { token?: string | null }) {
    return this.request<T>('DELETE', path, body, opts);
  }
}

export const enc = encodeURIComponent;
