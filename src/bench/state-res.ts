/**
 * `node dist/bench/state-res.js [--versions 10,12,1] [--repeat N] [--processes P]` — state
 * resolution of two forks of 1,000 state events each (also run by
 * `bench:events`, see event-path.ts).
 *
 * The fixture has the shape of the unit suite's sanity check: a room (create,
 * creator's join, power levels, public join rules, a second member at 50)
 * forks; fork A adds 1,000 custom state events; fork B adds a join every
 * fourth step, a power-levels change every hundredth (from the second) and
 * conflicting custom state otherwise. Events are built directly (no hashing
 * or signing: resolution reads only ids, auth_events and the fields the auth
 * rules use).
 *
 * Each room version runs in P fresh child processes (default 3), so the
 * FIRST resolution is measured with a cold JIT (the honest figure for a rare,
 * large resolution), as wall clock and as CPU time (steadier on a busy
 * machine); the later ones give the warm median. Every result is checked
 * (size and chosen events) so that a broken resolver cannot look fast.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { authEventsSelectionKeys } from '../matrix/auth-rules/selection.js';
import { getRoomVersion, type RoomVersion } from '../matrix/room-versions.js';
import { resolveState } from '../matrix/state-res.js';
import { stateKey, type RoomEvent, type StateIds } from '../matrix/types.js';
import { fmt, formatTable } from './report.js';
import { percentile } from './stats.js';
import { runIfMain } from './util.js';

const ALICE = '@alice:a.example';
const BOB = '@bob:b.example';
const FORK_SIZE = 1000;

/** One branch of a room: its state and last event; the event store is shared. */
class Branch {
  state = new Map<string, RoomEvent>();
  last: string[] = [];
  depth = 0;

  constructor(
    readonly rv: RoomVersion,
    readonly events: Map<string, RoomEvent>,
    readonly clock: { n: number; ts: number; roomId: string },
  ) {}

  fork(): Branch {
    const b = new Branch(this.rv, this.events, this.clock);
    b.state = new Map(this.state);
    b.last = [...this.last];
    b.depth = this.depth;
    return b;
  }

  add(type: string, sender: string, sk: string, content: Record<string, unknown>): RoomEvent {
    const n = ++this.clock.n;
    const server = sender.slice(sender.indexOf(':') + 1);
    const isCreate = type === 'm.room.create';
    const ev: RoomEvent = {
      event_id: `$e${n}:${server}`,
      room_id: this.clock.roomId,
      sender,
      type,
      state_key: sk,
      content,
      origin_server_ts: (this.clock.ts += 10),
      depth: this.depth + 1,
      prev_events: [...this.last],
      auth_events: [],
    };
    if (isCreate && this.rv.roomIdFromCreateEvent) {
      // v12: the room id names the create event, which carries no room_id.
      delete (ev as Partial<RoomEvent>).room_id;
      this.clock.roomId = '!' + ev.event_id.slice(1);
    }
    ev.auth_events = authEventsSelectionKeys(ev, this.rv)
      .map((k) => this.state.get(k)?.event_id)
      .filter((x): x is string => x !== undefined);
    this.events.set(ev.event_id, ev);
    this.state.set(stateKey(type, sk), ev);
    this.last = [ev.event_id];
    this.depth = ev.depth;
    return ev;
  }

  stateIds(): StateIds {
    return new Map([...this.state].map(([k, e]) => [k, e.event_id]));
  }
}

export interface Fixture {
  rv: RoomVersion;
  sets: StateIds[];
  fetch: (id: string) => RoomEvent | undefined;
  /** The events of each fork, by state key (what a correct result picks from). */
  a: Map<string, string>;
  b: Map<string, string>;
  base: StateIds;
}

export function buildFixture(versionId: string): Fixture {
  const rv = getRoomVersion(versionId);
  if (!rv) throw new Error(`unknown room version ${versionId}`);
  const events = new Map<string, RoomEvent>();
  const root = new Branch(rv, events, { n: 0, ts: 1_000, roomId: '!room:a.example' });
  // Room creators (v12) have an infinite level and may not be listed in users.
  const plUsers = (extra: Record<string, number>) => (rv.privilegedCreators ? extra : { [ALICE]: 100, ...extra });
  root.add('m.room.create', ALICE, '', rv.implicitRoomCreator ? { room_version: rv.id } : { creator: ALICE, room_version: rv.id });
  root.add('m.room.member', ALICE, ALICE, { membership: 'join' });
  root.add('m.room.power_levels', ALICE, '', { users: plUsers({ [BOB]: 50 }) });
  root.add('m.room.join_rules', ALICE, '', { join_rule: 'public' });
  root.add('m.room.member', BOB, BOB, { membership: 'join' });
  const base = root.stateIds();
  const fa = root.fork();
  const fb = root.fork();
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  for (let i = 0; i < FORK_SIZE; i++) {
    const ea = fa.add('m.custom', ALICE, `k${i}`, { v: `a${i}` });
    a.set(stateKey(ea.type, ea.state_key!), ea.event_id);
    let eb: RoomEvent;
    if (i % 4 === 0) {
      const u = `@u${i}:b.example`;
      eb = fb.add('m.room.member', u, u, { membership: 'join' });
    } else if (i % 100 === 1) {
      eb = fb.add('m.room.power_levels', ALICE, '', { users: plUsers({ [BOB]: 50, [`@u${i - 1}:b.example`]: 10 }) });
    } else {
      eb = fb.add('m.custom', BOB, `k${i}`, { v: `b${i}` });
    }
    b.set(stateKey(eb.type, eb.state_key!), eb.event_id);
  }
  return { rv, sets: [fa.stateIds(), fb.stateIds()], fetch: (id) => events.get(id), a, b, base };
}

/**
 * Checks a resolution of the fixture; returns the problems found (none when
 * right). Every key of both forks must be in the result, from one of them;
 * keys only one fork has come from it. In v2/v2.1 the rest is fixed too:
 * fork B's custom state wins its conflicts (its events cite a later power
 * levels event, so they come later in the mainline order) and B's last power
 * levels event is the room's.
 */
export function checkResult(fx: Fixture, res: StateIds): string[] {
  const problems: string[] = [];
  const keys = new Set([...fx.base.keys(), ...fx.a.keys(), ...fx.b.keys()]);
  if (res.size !== keys.size) problems.push(`${res.size} keys instead of ${keys.size}`);
  for (const k of keys) {
    const got = res.get(k);
    const inA = fx.a.get(k);
    const inB = fx.b.get(k);
    const want =
      inA !== undefined && inB !== undefined
        ? fx.rv.stateRes === 'v1'
          ? undefined // v1 picks by depth, then sha1 of the id: either may win
          : inB
        : (inA ?? inB ?? fx.base.get(k));
    if (got === undefined) problems.push(`missing ${k.replace('\u0000', '|')}`);
    else if (want !== undefined ? got !== want : got !== inA && got !== inB) {
      problems.push(`${k.replace('\u0000', '|')}: ${got}, expected ${want ?? `${inA} or ${inB}`}`);
    }
    if (problems.length >= 5) break;
  }
  return problems;
}

/**
 * CPU ms of this thread (Linux: /proc/thread-self/schedstat, in ns; JIT and
 * GC helper threads are left out), else of the process (all threads).
 */
function cpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ', 1)[0]) / 1e6;
  } catch {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  }
}

export interface StateResFigures {
  version: string;
  algorithm: string;
  /** Wall clock of the first resolution in the process. */
  cold_ms: number;
  /** CPU time of the first resolution: the main thread's (Linux), else the whole process's. */
  cold_cpu_ms: number;
  /** Median wall clock of the later ones. */
  warm_ms: number;
  keys: number;
  problems: string[];
}

/** In this process: the first resolution, then `repeat` more (warm). */
export function measureHere(versionId: string, repeat: number): StateResFigures {
  const fx = buildFixture(versionId);
  const times: number[] = [];
  let coldCpu = NaN;
  let res: StateIds | undefined;
  const problems: string[] = [];
  for (let i = 0; i <= repeat; i++) {
    const c0 = cpuMs();
    const t0 = performance.now();
    res = resolveState(fx.rv, fx.sets, fx.fetch);
    times.push(performance.now() - t0);
    if (i === 0) coldCpu = cpuMs() - c0;
    // Every result is checked, outside the timing.
    for (const p of checkResult(fx, res)) if (!problems.includes(p)) problems.push(p);
  }
  return {
    version: versionId,
    algorithm: fx.rv.stateRes,
    cold_ms: times[0]!,
    cold_cpu_ms: coldCpu,
    warm_ms: repeat > 0 ? percentile(times.slice(1), 50) : NaN,
    keys: res!.size,
    problems,
  };
}

const run = promisify(execFile);

/**
 * Each version in `processes` fresh child processes (cold JIT for the first
 * call of each); figures are the medians over them, problems their union.
 */
export async function measureStateRes(versions: readonly string[], repeat: number, processes = 3): Promise<StateResFigures[]> {
  const out: StateResFigures[] = [];
  for (const v of versions) {
    const runs: StateResFigures[] = [];
    for (let i = 0; i < processes; i++) {
      const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', v, '--repeat', String(repeat)];
      const { stdout } = await run(process.execPath, args, { timeout: 300_000, maxBuffer: 1 << 20 });
      runs.push(JSON.parse(stdout.trim().split('\n').pop()!) as StateResFigures);
    }
    const med = (k: 'cold_ms' | 'cold_cpu_ms' | 'warm_ms') => percentile(runs.map((r) => r[k]), 50);
    out.push({
      ...runs[0]!,
      cold_ms: med('cold_ms'),
      cold_cpu_ms: med('cold_cpu_ms'),
      warm_ms: med('warm_ms'),
      problems: [...new Set(runs.flatMap((r) => r.problems))],
    });
  }
  return out;
}

/** The table printed by this bench and by bench:events; false when a result was wrong. */
export function reportStateRes(figs: readonly StateResFigures[], repeat: number, processes: number): boolean {
  const rows: string[][] = [['room version', 'algorithm', 'first ms (cold)', 'first ms main-thread CPU', `warm ms (median of ${repeat})`, 'keys', 'result']];
  let ok = true;
  for (const f of figs) {
    const result = f.problems.length ? `WRONG: ${f.problems.join('; ')}` : 'ok';
    rows.push([f.version, f.algorithm, fmt(f.cold_ms), fmt(f.cold_cpu_ms), fmt(f.warm_ms), String(f.keys), result]);
    if (f.problems.length) ok = false;
  }
  console.log(
    `state resolution: two forks of ${FORK_SIZE} state events each; first = the first call in a fresh process (median of ${processes} processes)`,
  );
  console.log(formatTable(rows));
  return ok;
}

export const STATE_RES_VERSIONS = ['10', '12', '1'];

interface StateResOpts {
  versions: string[];
  repeat: number;
  processes: number;
  child?: string;
}

function parse(argv: readonly string[]): StateResOpts {
  const o: StateResOpts = { versions: STATE_RES_VERSIONS, repeat: 20, processes: 3 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--versions') o.versions = v.split(',').map((s) => s.trim());
    else if (flag === '--repeat') {
      o.repeat = Number(v);
      if (!Number.isInteger(o.repeat) || o.repeat < 0) throw new Error('--repeat needs a non-negative integer');
    } else if (flag === '--processes') {
      o.processes = Number(v);
      if (!Number.isInteger(o.processes) || o.processes < 1) throw new Error('--processes needs a positive integer');
    } else if (flag === '--child') o.child = v;
    else throw new Error(`unknown flag ${flag}`);
  }
  for (const v of o.child ? [o.child] : o.versions) if (!getRoomVersion(v)) throw new Error(`unknown room version ${v}`);
  return o;
}

export async function main(argv: readonly string[]): Promise<number> {
  let o: StateResOpts;
  try {
    o = parse(argv);
  } catch (e) {
    console.error(`state-res bench: ${(e as Error).message}\nUsage: node dist/bench/state-res.js [--versions 10,12,1] [--repeat N] [--processes P]`);
    return 2;
  }
  if (o.child !== undefined) {
    console.log(JSON.stringify(measureHere(o.child, o.repeat)));
    return 0;
  }
  return reportStateRes(await measureStateRes(o.versions, o.repeat, o.processes), o.repeat, o.processes) ? 0 : 1;
}

runIfMain(import.meta.url, main);
