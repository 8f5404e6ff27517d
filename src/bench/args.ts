/**
 * Hand-written command-line parsing for `npm run bench -- ...`.
 * Accepts `--flag value` and `--flag=value`; `--pid` may repeat (and also
 * takes a comma-separated list). Errors throw ArgError with a message meant
 * for the user.
 */

export const SCENARIOS = [
  'send',
  'delivery',
  'fanout',
  'initial-sync',
  'empty-sync',
  'history',
  'joins',
  'versions',
  'whoami',
] as const;
/**
 * Scenarios run only when named (not part of `all`): they log in hundreds of
 * devices, which a target's login rate limit must allow.
 */
export const EXTRA_SCENARIOS = ['keys-query', 'keys-claim'] as const;
export type ScenarioName = (typeof SCENARIOS)[number] | (typeof EXTRA_SCENARIOS)[number];
const KNOWN: readonly string[] = [...SCENARIOS, ...EXTRA_SCENARIOS];

export interface BenchOptions {
  baseUrl: string;
  sharedSecret?: string;
  users: number;
  rooms: number;
  /**
   * The target's events writers (the worker shapes' persisters, set by
   * `shapes`): the rooms are then spread evenly over them (room-split.ts).
   */
  roomWriters?: readonly string[];
  durationS: number;
  concurrency: number;
  seed: string;
  scenarios: ScenarioName[];
  pids: number[];
  rounds: number;
  jsonFile?: string;
  /** Events per room for `initial-sync`. */
  events: number;
  /** Length (events) of the room `history` paginates through. */
  history: number;
  /** Upper bound on events one `send`/`delivery` round sends. */
  maxEvents: number;
  /** Seconds the `delivery`/`fanout` scenarios wait for stragglers. */
  drainS: number;
  /** Events per second `delivery` sends (paced); 0 = as fast as `concurrency` senders can. */
  deliveryRate: number;
  /** events/s of the send scenario, paced (open loop); 0 = C closed-loop senders. */
  sendRate: number;
  /** Seconds each scenario runs unmeasured before its first round (JIT warm-up); 0 = none. */
  warmupS: number;
  /** Users that long-poll /sync in `delivery` (the first N; 0 = all). */
  deliveryReceivers: number;
  /** Users and devices per user whose keys keys-query / keys-claim ask for. */
  keyUsers: number;
  keyDevices: number;
  quiet: boolean;
}

export class ArgError extends Error {}

export const DEFAULTS = {
  users: 10,
  rooms: 4,
  durationS: 10,
  concurrency: 4,
  rounds: 1,
  events: 20,
  history: 300,
  maxEvents: 100_000,
  drainS: 15,
  deliveryRate: 20,
  sendRate: 0,
  warmupS: 0,
  deliveryReceivers: 10,
  keyUsers: 100,
  keyDevices: 5,
} as const;

export const USAGE = `Usage: npm run bench -- --base-url URL [options]

  --base-url URL        homeserver client-server API base (required), e.g. http://127.0.0.1:8008
  --shared-secret S     register users through /_synapse/admin/v1/register
                        (default: open registration with the m.login.dummy flow)
  --users N             users to register (default ${DEFAULTS.users})
  --rooms M             rooms to create; every user joins every room (default ${DEFAULTS.rooms})
  --duration S          seconds each timed scenario runs (default ${DEFAULTS.durationS})
  --concurrency C       concurrent senders / requesters (default ${DEFAULTS.concurrency})
  --seed X              seed for a repeatable workload (default: random)
  --scenario LIST       all, or comma-separated: ${SCENARIOS.join(', ')} (default all);
                        also ${EXTRA_SCENARIOS.join(', ')}, run only when named (e.g. all,keys-query,keys-claim)
  --pid PID             server process to sample from /proc (repeatable)
  --rounds R            run each scenario R times, report median and range (default ${DEFAULTS.rounds})
  --warmup S            run each scenario S seconds unmeasured before its first round (default 0): the
                        server processes' JIT compiles their hot paths over the first minute or two of load
  --json FILE           write all figures as JSON to FILE
  --events K            events per room in initial-sync (default ${DEFAULTS.events})
  --history H           events in the room history paginates (default ${DEFAULTS.history})
  --max-events E        cap on events one send/delivery round sends (default ${DEFAULTS.maxEvents})
  --drain S             seconds delivery/fanout wait for late events (default ${DEFAULTS.drainS})
  --delivery-rate R     events/s delivery sends, paced (default ${DEFAULTS.deliveryRate}; 0 = saturate with C senders)
  --send-rate R         events/s the send scenario sends, paced (default 0: C closed-loop senders as fast
                        as they are answered); the same rate in every shape compares CPU per event at equal load
  --delivery-receivers N  users long-polling /sync in delivery (default ${DEFAULTS.deliveryReceivers}; 0 = all users)
  --key-users U         users whose devices keys-query/keys-claim ask for (default ${DEFAULTS.keyUsers})
  --key-devices D       devices (logins) per such user, each with uploaded keys (default ${DEFAULTS.keyDevices})
  --quiet               print only the figures
  --help                this text
`;

const VALUE_FLAGS = new Set([
  'base-url',
  'shared-secret',
  'users',
  'rooms',
  'duration',
  'concurrency',
  'seed',
  'scenario',
  'pid',
  'rounds',
  'json',
  'events',
  'history',
  'max-events',
  'drain',
  'delivery-rate',
  'send-rate',
  'warmup',
  'delivery-receivers',
  'key-users',
  'key-devices',
]);
const BOOL_FLAGS = new Set(['quiet', 'help']);

function positiveInt(flag: string, v: string, min = 1): number {
  if (!/^\d+$/.test(v)) throw new ArgError(`--${flag} must be a whole number, got "${v}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new ArgError(`--${flag} must be at least ${min}, got ${v}`);
  return n;
}

function positiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new ArgError(`--${flag} must be a positive number, got "${v}"`);
  return n;
}

function nonNegativeNumber(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new ArgError(`--${flag} must be a number of at least 0, got "${v}"`);
  return n;
}

export function parseScenarios(v: string): ScenarioName[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new ArgError('--scenario needs a name');
  const out: ScenarioName[] = names.includes('all') ? [...SCENARIOS] : [];
  for (const n of names) {
    if (n === 'all') continue;
    if (!KNOWN.includes(n)) throw new ArgError(`unknown scenario "${n}" (known: all, ${KNOWN.join(', ')})`);
    if (!out.includes(n as ScenarioName)) out.push(n as ScenarioName);
  }
  return out;
}

export function normaliseBaseUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ArgError(`--base-url is not a URL: "${v}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ArgError(`--base-url must be http(s), got ${u.protocol}`);
  if (u.search || u.hash) throw new ArgError('--base-url must not have a query or fragment');
  return u.toString().replace(/\/+$/, '');
}

/** Parse argv (without node and script). Returns null when --help was asked for. */
export function parseArgs(argv: readonly string[], randomSeed: () => string = defaultSeed): BenchOptions | null {
  const values = new Map<string, string[]>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ArgError(`unexpected argument "${arg}" (flags start with --)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (BOOL_FLAGS.has(name)) {
      if (eq >= 0) throw new ArgError(`--${name} takes no value`);
      bools.add(name);
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new ArgError(`unknown flag --${name}`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined || value.startsWith('--')) throw new ArgError(`--${name} needs a value`);
    }
    if (name !== 'pid' && values.has(name)) throw new ArgError(`--${name} given twice`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  if (bools.has('help')) return null;
  const one = (k: string): string | undefined => values.get(k)?.[0];

  const base = one('base-url');
  if (!base) throw new ArgError('--base-url is required');
  const pids: number[] = [];
  for (const v of values.get('pid') ?? [])
    for (const p of v.split(',').filter(Boolean)) pids.push(positiveInt('pid', p.trim()));

  const opts: BenchOptions = {
    baseUrl: normaliseBaseUrl(base),
    sharedSecret: one('shared-secret'),
    users: one('users') !== undefined ? positiveInt('users', one('users')!) : DEFAULTS.users,
    rooms: one('rooms') !== undefined ? positiveInt('rooms', one('rooms')!) : DEFAULTS.rooms,
    durationS: one('duration') !== undefined ? positiveNumber('duration', one('duration')!) : DEFAULTS.durationS,
    concurrency: one('concurrency') !== undefined ? positiveInt('concurrency', one('concurrency')!) : DEFAULTS.concurrency,
    seed: one('seed') ?? randomSeed(),
    scenarios: one('scenario') !== undefined ? parseScenarios(one('scenario')!) : [...SCENARIOS],
    pids: [...new Set(pids)],
    rounds: one('rounds') !== undefined ? positiveInt('rounds', one('rounds')!) : DEFAULTS.rounds,
    jsonFile: one('json'),
    events: one('events') !== undefined ? positiveInt('events', one('events')!) : DEFAULTS.events,
    history: one('history') !== undefined ? positiveInt('history', one('history')!) : DEFAULTS.history,
    maxEvents: one('max-events') !== undefined ? positiveInt('max-events', one('max-events')!) : DEFAULTS.maxEvents,
    drainS: one('drain') !== undefined ? positiveNumber('drain', one('drain')!) : DEFAULTS.drainS,
    deliveryRate: one('delivery-rate') !== undefined ? positiveInt('delivery-rate', one('delivery-rate')!, 0) : DEFAULTS.deliveryRate,
    warmupS: one('warmup') !== undefined ? nonNegativeNumber('warmup', one('warmup')!) : DEFAULTS.warmupS,
    sendRate: one('send-rate') !== undefined ? positiveInt('send-rate', one('send-rate')!, 0) : DEFAULTS.sendRate,
    deliveryReceivers:
      one('delivery-receivers') !== undefined ? positiveInt('delivery-receivers', one('delivery-receivers')!, 0) : DEFAULTS.deliveryReceivers,
    keyUsers: one('key-users') !== undefined ? positiveInt('key-users', one('key-users')!) : DEFAULTS.keyUsers,
    keyDevices: one('key-devices') !== undefined ? positiveInt('key-devices', one('key-devices')!) : DEFAULTS.keyDevices,
    quiet: bools.has('quiet'),
  };
  if (opts.sharedSecret === '') throw new ArgError('--shared-secret is empty');
  if (opts.jsonFile === '') throw new ArgError('--json needs a file name');
  if (opts.scenarios.includes('joins') && opts.users < 2) throw new ArgError('the joins scenario needs --users of at least 2');
  return opts;
}

function defaultSeed(): string {
  return Math.floor(Math.random() * 2 ** 32).toString(36);
}
