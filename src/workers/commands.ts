/**
 * The replication line commands (DESIGN.md §4), parsed and serialised as pure
 * code. One command is one line: `NAME` or `NAME <args>`.
 *
 *   RDATA <stream> <instance> <token|batch> <row-json>   a stream row ("batch": more rows of the same token follow)
 *   POSITION <stream> <instance> <prev> <new>           the instance's stream moved from prev to new (rows in between, if any, are in the DB)
 *   REPLICATE                                           ask every instance to announce its POSITIONs
 *   PING <timestamp-ms>
 *   USER_SYNC <instance> <user_id> <start|end> <last_sync_ms>   a user's /sync began or ended on a worker (presence)
 *   CLEAR_USER_SYNC <instance>                          the instance went away: forget its syncing users
 *   FEDERATION_ACK <instance> <token>                   a federation sender processed the federation stream up to token
 *   USER_IP <json>                                      {user_id, access_token, ip, user_agent, device_id, last_seen}
 *   REMOTE_SERVER_UP <server_name>                      a remote server came back: retry sending to it now
 *
 * Stream and instance names may not contain spaces (instance names are
 * worker_name values). Rows are JSON without newlines.
 *
 * One transport message (a Redis pub/sub message) carries one or more
 * commands, one per line (`\n`-separated, in order): a process coalesces what
 * it publishes in one turn of its event loop (e.g. the rows of one group
 * commit) into one message, since every message costs every subscriber a
 * wake-up. `splitCommandLines` takes a message apart; a message of one line
 * is the single-command form.
 */

export class ReplicationCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicationCommandError';
  }
}

export interface UserIp {
  user_id: string;
  access_token: string;
  ip: string;
  user_agent: string;
  device_id: string | null;
  last_seen: number;
}

export type Command =
  | { name: 'RDATA'; stream: string; instance: string; token: number | 'batch'; row: unknown }
  | { name: 'POSITION'; stream: string; instance: string; prev: number; next: number }
  | { name: 'REPLICATE' }
  | { name: 'PING'; ts: number }
  | { name: 'USER_SYNC'; instance: string; userId: string; syncing: boolean; lastSyncMs: number }
  | { name: 'CLEAR_USER_SYNC'; instance: string }
  | { name: 'FEDERATION_ACK'; instance: string; token: number }
  | { name: 'USER_IP'; info: UserIp }
  | { name: 'REMOTE_SERVER_UP'; server: string };

const WORD = /^[^\s]+$/;

function word(v: string, what: string): string {
  if (!WORD.test(v)) throw new ReplicationCommandError(`${what} must be a non-empty word without spaces: ${JSON.stringify(v)}`);
  return v;
}

function int(v: string | undefined, what: string): number {
  if (v === undefined || !/^-?\d+$/.test(v)) throw new ReplicationCommandError(`${what}: expected an integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new ReplicationCommandError(`${what}: out of range`);
  return n;
}

function intOut(n: number, what: string): string {
  if (!Number.isSafeInteger(n)) throw new ReplicationCommandError(`${what}: expected an integer, got ${n}`);
  return String(n);
}

/** Splits `s` into at most `n` space-separated parts (the last keeps its spaces). */
function splitN(s: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(' ');
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + 1);
  }
  out.push(rest);
  return out;
}

export function serialiseCommand(c: Command): string {
  switch (c.name) {
    case 'RDATA': {
      const token = c.token === 'batch' ? 'batch' : intOut(c.token, 'RDATA token');
      const json = JSON.stringify(c.row);
      if (json === undefined) throw new ReplicationCommandError('RDATA row must be JSON');
      return `RDATA ${word(c.stream, 'stream')} ${word(c.instance, 'instance')} ${token} ${json}`;
    }
    case 'POSITION':
      return `POSITION ${word(c.stream, 'stream')} ${word(c.instance, 'instance')} ${intOut(c.prev, 'prev')} ${intOut(c.next, 'new')}`;
    case 'REPLICATE':
      return 'REPLICATE';
    case 'PING':
      return `PING ${intOut(c.ts, 'PING timestamp')}`;
    case 'USER_SYNC':
      return `USER_SYNC ${word(c.instance, 'instance')} ${word(c.userId, 'user_id')} ${c.syncing ? 'start' : 'end'} ${intOut(c.lastSyncMs, 'last_sync_ms')}`;
    case 'CLEAR_USER_SYNC':
      return `CLEAR_USER_SYNC ${word(c.instance, 'instance')}`;
    case 'FEDERATION_ACK':
      return `FEDERATION_ACK ${word(c.instance, 'instance')} ${intOut(c.token, 'token')}`;
    case 'USER_IP':
      return `USER_IP ${JSON.stringify(c.info)}`;
    case 'REMOTE_SERVER_UP':
      return `REMOTE_SERVER_UP ${word(c.server, 'server name')}`;
  }
}

/** The command lines of one transport message (empty lines are skipped). */
export function splitCommandLines(message: string): string[] {
  if (!message.includes('\n')) return message === '' ? [] : [message];
  return message.split('\n').filter((l) => l !== '');
}

export function parseCommand(line: string): Command {
  if (line.includes('\n') || line.includes('\r')) throw new ReplicationCommandError('a command is a single line');
  const sp = line.indexOf(' ');
  const name = sp < 0 ? line : line.slice(0, sp);
  const rest = sp < 0 ? '' : line.slice(sp + 1);
  const args = (n: number) => {
    const parts = splitN(rest, n);
    if (rest === '' || parts.length !== n || parts.some((p) => p === '')) {
      throw new ReplicationCommandError(`${name}: expected ${n} argument${n === 1 ? '' : 's'}, got ${JSON.stringify(rest)}`);
    }
    return parts;
  };
  switch (name) {
    case 'RDATA': {
      const [stream, instance, token, json] = args(4) as [string, string, string, string];
      let row: unknown;
      try {
        row = JSON.parse(json);
      } catch {
        throw new ReplicationCommandError('RDATA: the row is not JSON');
      }
      return { name, stream, instance, token: token === 'batch' ? 'batch' : int(token, 'RDATA token'), row };
    }
    case 'POSITION': {
      const [stream, instance, prev, next] = args(4) as [string, string, string, string];
      if (next.includes(' ')) throw new ReplicationCommandError('POSITION: too many arguments');
      return { name, stream, instance, prev: int(prev, 'POSITION prev'), next: int(next, 'POSITION new') };
    }
    case 'REPLICATE':
      if (rest !== '') throw new ReplicationCommandError('REPLICATE takes no arguments');
      return { name };
    case 'PING':
      return { name, ts: int(args(1)[0], 'PING timestamp') };
    case 'USER_SYNC': {
      const [instance, userId, state, last] = args(4) as [string, string, string, string];
      if (state !== 'start' && state !== 'end') throw new ReplicationCommandError('USER_SYNC: state must be start or end');
      return { name, instance, userId, syncing: state === 'start', lastSyncMs: int(last, 'USER_SYNC last_sync_ms') };
    }
    case 'CLEAR_USER_SYNC':
      return { name, instance: word(args(1)[0]!, 'instance') };
    case 'FEDERATION_ACK': {
      const [instance, token] = args(2) as [string, string];
      return { name, instance, token: int(token, 'FEDERATION_ACK token') };
    }
    case 'USER_IP': {
      let info: any;
      try {
        info = JSON.parse(args(1)[0]!);
      } catch {
        throw new ReplicationCommandError('USER_IP: not JSON');
      }
      if (!info || typeof info !== 'object' || typeof info.user_id !== 'string' || typeof info.last_seen !== 'number') {
        throw new ReplicationCommandError('USER_IP: expected {user_id, access_token, ip, user_agent, device_id, last_seen}');
      }
      return { name, info: info as UserIp };
    }
    case 'REMOTE_SERVER_UP':
      return { name, server: word(args(1)[0]!, 'server name') };
    default:
      throw new ReplicationCommandError(`unknown command ${JSON.stringify(name)}`);
  }
}
