/**
 * A tiny in-memory stand-in for a homeserver, just enough of the
 * client-server API for the load generator's scenarios: versions, open
 * registration (m.login.dummy UIA) and shared-secret registration, whoami,
 * createRoom, join, send (idempotent per txn), filters, long-poll /sync and
 * /messages. Knobs let a test make it misbehave (duplicate or drop events).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registrationMac } from '../../../src/bench/mac.js';

interface Ev {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
  pos: number;
}

export interface FakeOptions {
  sharedSecret?: string;
  openRegistration?: boolean;
  /** Deliver every Nth message event twice in /sync. */
  duplicateEvery?: number;
  /** Never deliver every Nth message event in /sync. */
  dropEvery?: number;
}

export class FakeHomeserver {
  server: Server;
  baseUrl = '';
  private events: Ev[] = [];
  private tokens = new Map<string, string>();
  private users = new Set<string>();
  private members = new Map<string, Set<string>>();
  private filters = new Map<string, any>();
  private txns = new Map<string, string>();
  private nonces = new Set<string>();
  private waiters = new Set<() => void>();
  private n = 0;

  constructor(private readonly opts: FakeOptions = {}) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => this.reply(res, 500, { errcode: 'M_UNKNOWN', error: String(e) }));
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private reply(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private notify() {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private append(ev: Omit<Ev, 'event_id' | 'pos'>): Ev {
    const pos = this.events.length + 1;
    const full = { ...ev, pos, event_id: `$e${pos}` };
    this.events.push(full);
    this.notify();
    return full;
  }

  private login(userId: string) {
    const token = `tok${++this.n}`;
    this.tokens.set(token, userId);
    this.users.add(userId);
    return { user_id: userId, access_token: token, device_id: `D${this.n}` };
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url!, 'http://x');
    const p = url.pathname;
    let raw = '';
    for await (const c of req) raw += c;
    const body = raw ? JSON.parse(raw) : {};
    const user = this.tokens.get((req.headers.authorization ?? '').replace('Bearer ', ''));
    const C = '/_matrix/client/v3';

    if (p === '/_matrix/client/versions') return this.reply(res, 200, { versions: ['v1.11'] });
    if (p === '/_synapse/admin/v1/register') {
      if (!this.opts.sharedSecret) return this.reply(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'no' });
      if (req.method === 'GET') {
        const nonce = `n${++this.n}`;
        this.nonces.add(nonce);
        return this.reply(res, 200, { nonce });
      }
      const want = registrationMac(this.opts.sharedSecret, body.nonce, body.username, body.password, !!body.admin);
      if (!this.nonces.delete(body.nonce) || want !== body.mac)
        return this.reply(res, 403, { errcode: 'M_FORBIDDEN', error: 'HMAC incorrect' });
      return this.reply(res, 200, this.login(`@${body.username}:fake`));
    }
    if (p === `${C}/register`) {
      if (!this.opts.openRegistration) return this.reply(res, 403, { errcode: 'M_FORBIDDEN', error: 'Registration has been disabled' });
      if (body.auth?.type !== 'm.login.dummy' || body.auth?.session !== 'sess')
        return this.reply(res, 401, { session: 'sess', flows: [{ stages: ['m.login.dummy'] }], params: {} });
      return this.reply(res, 200, this.login(`@${body.username}:fake`));
    }
    if (!user) return this.reply(res, 401, { errcode: 'M_MISSING_TOKEN', error: 'no token' });
    if (p === `${C}/account/whoami`) return this.reply(res, 200, { user_id: user });
    if (p === `${C}/createRoom`) {
      const room = `!r${++this.n}:fake`;
      this.members.set(room, new Set([user]));
      this.append({ room_id: room, type: 'm.room.create', sender: user, content: {} });
      return this.reply(res, 200, { room_id: room });
    }
    let m = /^\/_matrix\/client\/v3\/join\/([^/]+)$/.exec(p);
    if (m) {
      const room = decodeURIComponent(m[1]!);
      this.members.get(room)!.add(user);
      this.append({ room_id: room, type: 'm.room.member', sender: user, content: { membership: 'join' } });
      return this.reply(res, 200, { room_id: room });
    }
    m = /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/send\/([^/]+)\/([^/]+)$/.exec(p);
    if (m) {
      const room = decodeURIComponent(m[1]!);
      const key = `${user}/${m[3]}`;
      let id = this.txns.get(key);
      if (!id) {
        id = this.append({ room_id: room, type: decodeURIComponent(m[2]!), sender: user, content: body }).event_id;
        this.txns.set(key, id);
      }
      return this.reply(res, 200, { event_id: id });
    }
    m = /^\/_matrix\/client\/v3\/user\/([^/]+)\/filter$/.exec(p);
    if (m) {
      const id = String(++this.n);
      this.filters.set(id, body);
      return this.reply(res, 200, { filter_id: id });
    }
    m = /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/messages$/.exec(p);
    if (m) {
      const room = decodeURIComponent(m[1]!);
      const from = Number(url.searchParams.get('from') ?? this.events.length);
      const limit = Number(url.searchParams.get('limit') ?? 10);
      const chunk = this.events.filter((e) => e.room_id === room && e.pos <= from).reverse().slice(0, limit);
      // Tokens are positions: from=N includes event N; `end` is just before the oldest returned.
      const end = chunk.length ? String(chunk.at(-1)!.pos - 1) : undefined;
      return this.reply(res, 200, { chunk, start: String(from), end });
    }
    if (p === `${C}/sync`) {
      const since = Number(url.searchParams.get('since') ?? 0);
      const timeout = Number(url.searchParams.get('timeout') ?? 0);
      const f = this.filters.get(url.searchParams.get('filter') ?? '');
      const visible = () =>
        this.events.filter(
          (e) =>
            e.pos > since &&
            this.members.get(e.room_id)?.has(user) &&
            (!f?.room?.rooms || f.room.rooms.includes(e.room_id)) &&
            (!f?.room?.timeline?.types || f.room.timeline.types.includes(e.type)),
        );
      if (since && timeout && visible().length === 0) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, timeout);
          this.waiters.add(() => (clearTimeout(t), r()));
        });
      }
      const evs = since ? visible() : [];
      const join: Record<string, { timeline: { events: Ev[]; limited: boolean } }> = {};
      for (const room of [...this.members].filter(([, s]) => s.has(user)).map(([r]) => r)) {
        if (f?.room?.rooms && !f.room.rooms.includes(room)) continue;
        join[room] = { timeline: { events: [], limited: false } };
      }
      for (const e of evs) {
        if (e.type === 'm.room.message' && this.opts.dropEvery && e.pos % this.opts.dropEvery === 0) continue;
        join[e.room_id]!.timeline.events.push(e);
        if (e.type === 'm.room.message' && this.opts.duplicateEvery && e.pos % this.opts.duplicateEvery === 0)
          join[e.room_id]!.timeline.events.push(e);
      }
      if (!since) for (const room of Object.keys(join)) join[room]!.timeline.events = this.events.filter((e) => e.room_id === room).slice(-10);
      return this.reply(res, 200, { next_batch: String(this.events.length), rooms: { join } });
    }
    return this.reply(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
  }
}
