/**
 * `node dist/bench/event-path.js [--parts events,state-res] [--engines
 *   sqlite,postgres] [--events N] [--rooms R] [--inflight C] [--rounds K]
 *   [--state-res-versions 10,12,1]` — the event-creation path in
 * process, without HTTP: build (prev/auth events, depth) + hash + sign +
 * auth-check against the cached state + persist with its state group, through
 * the real EventCreator and SqlRoomStore, against a temporary SQLite file
 * (synchronous=FULL, as the server runs it) and a temporary PostgreSQL
 * database (created on 127.0.0.1:5432 as user postgres, dropped afterwards).
 *
 * Figures per engine and round: events/s (wall clock, C requests kept in
 * flight over R rooms), and CPU ms per event of this process
 * (process.cpuUsage: user + system, all threads), split (Linux /proc) into
 * the main thread and the other threads (on SQLite mostly the writer thread
 * that runs the commits); for PostgreSQL also the CPU of the database's
 * server processes serving this database (`pg CPU`), and the events per
 * group commit (with C requests in flight at most C; on SQLite each commit
 * is one fsync).
 *
 * Then (part `state-res`, see state-res.ts) state resolution of two forks of
 * 1,000 state events each: the first call in a fresh process (cold) and the
 * warm median, per room version, with the result checked.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getRoomVersion } from '../matrix/room-versions.js';
import { generateSigningKey } from '../matrix/signing.js';
import { EventCreator } from '../services/rooms/event-creator.js';
import { txnScope } from '../services/rooms/room-service.js';
import type { Db } from '../storage/db.js';
import { migrate } from '../storage/migrate.js';
import { PostgresDb } from '../storage/postgres.js';
import { SqlRoomStore } from '../storage/rooms/sql-store.js';
import { SqliteDb } from '../storage/sqlite.js';
import { StreamIdGenerator } from '../streams/id-generator.js';
import { clockTicksPerSecond, parseStatCpuTicks, readCpuTicks, readLoadavg, ticksToMs } from './procstat.js';
import { fmt, formatTable } from './report.js';
import { percentile } from './stats.js';
import { measureStateRes, reportStateRes, STATE_RES_VERSIONS } from './state-res.js';
import { runIfMain } from './util.js';

interface Opts {
  parts: Array<'events' | 'state-res'>;
  stateResVersions: string[];
  engines: Array<'sqlite' | 'postgres'>;
  events: number;
  rooms: number;
  inflight: number;
  rounds: number;
}

const SERVER = 'bench.local';

function parse(argv: readonly string[]): Opts {
  const o: Opts = {
    parts: ['events', 'state-res'],
    stateResVersions: STATE_RES_VERSIONS,
    engines: ['sqlite', 'postgres'],
    events: 5000,
    rooms: 8,
    inflight: 16,
    rounds: 3,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const val = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = () => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
      return n;
    };
    if (flag === '--parts') {
      o.parts = val().split(',').map((s) => s.trim()) as Opts['parts'];
      if (o.parts.some((p) => p !== 'events' && p !== 'state-res')) throw new Error('--parts: events and/or state-res');
    } else if (flag === '--state-res-versions') {
      o.stateResVersions = val().split(',').map((s) => s.trim());
      if (o.stateResVersions.some((v) => !getRoomVersion(v))) throw new Error('--state-res-versions: known room versions');
    } else if (flag === '--engines') {
      o.engines = val().split(',').map((s) => s.trim()) as Opts['engines'];
      if (o.engines.some((e) => e !== 'sqlite' && e !== 'postgres')) throw new Error('--engines: sqlite and/or postgres');
    } else if (flag === '--events') o.events = int();
    else if (flag === '--rooms') o.rooms = int();
    else if (flag === '--inflight') o.inflight = int();
    else if (flag === '--rounds') o.rounds = int();
    else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

const run = promisify(execFile);
async function psql(sql: string): Promise<void> {
  await run('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql], { timeout: 30_000 });
}

/** CPU ticks of this process's main thread (undefined off Linux). */
function mainThreadTicks(): number | undefined {
  try {
    return parseStatCpuTicks(readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Summed CPU ticks of some processes (those that could be read). */
function ticksOf(pids: readonly number[]): number {
  let t = 0;
  for (const pid of pids) t += readCpuTicks(pid) ?? 0;
  return t;
}

/** PostgreSQL server processes serving database `name` (they run on this machine in the bench). */
async function backendPids(db: Db, name: string): Promise<number[]> {
  const rows = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = ?', [name]);
  const pids = rows.map((r) => Number(r.pid));
  // Only when they are visible here (same machine, readable /proc).
  const visible = new Set(readdirSafe('/proc'));
  return pids.filter((p) => visible.has(String(p)));
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function openEngine(engine: 'sqlite' | 'postgres'): Promise<{ db: Db; cleanup: () => Promise<void>; pgName?: string }> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'myelin-event-path-'));
    const db = new SqliteDb(path.join(dir, 'homeserver.db'));
    return { db, cleanup: async () => (await db.close(), rmSync(dir, { recursive: true, force: true })) };
  }
  const name = `myelin_evpath_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  await psql(`CREATE DATABASE "${name}"`);
  const db = new PostgresDb({ host: '127.0.0.1', port: 5432, user: 'postgres', database: name, max: 10 });
  return {
    db,
    pgName: name,
    cleanup: async () => {
      await db.close();
      await psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/** Creates the rooms (creator + join + power levels + join rules), not timed. */
async function makeRooms(creator: EventCreator, n: number, users: string[]): Promise<string[]> {
  const rooms: string[] = [];
  for (let r = 0; r < n; r++) {
    const roomId = `!bench${r}_${Date.now().toString(36)}:${SERVER}`;
    const owner = users[0]!;
    await creator.create({ roomId, type: 'm.room.create', stateKey: '', sender: owner, content: { room_version: '10', creator: owner }, roomVersion: '10' });
    await creator.create({ roomId, type: 'm.room.member', stateKey: owner, sender: owner, content: { membership: 'join' } });
    await creator.create({
      roomId,
      type: 'm.room.power_levels',
      stateKey: '',
      sender: owner,
      content: { users: { [owner]: 100 }, users_default: 0, events_default: 0, state_default: 50 },
    });
    await creator.create({ roomId, type: 'm.room.join_rules', stateKey: '', sender: owner, content: { join_rule: 'public' } });
    for (const u of users.slice(1)) await creator.create({ roomId, type: 'm.room.member', stateKey: u, sender: u, content: { membership: 'join' } });
    rooms.push(roomId);
  }
  return rooms;
}

interface RoundFigures {
  events_per_s: number;
  cpu_ms_per_event: number;
  /** Of which the main thread (NaN when /proc is not readable). */
  main_cpu_ms_per_event: number;
  /** PostgreSQL server processes of the bench's database (NaN for SQLite). */
  pg_cpu_ms_per_event: number;
  wall_ms: number;
  /** Events per group commit (one transaction each). */
  events_per_commit: number;
}

async function benchEngine(engine: 'sqlite' | 'postgres', o: Opts): Promise<RoundFigures[]> {
  const { db, cleanup, pgName } = await openEngine(engine);
  try {
    await migrate(db);
    const store = new SqlRoomStore(db, 'master');
    // Counts the group commits (each one transaction and, on SQLite, one fsync).
    let commits = 0;
    const persist = store.persistEventBatches.bind(store);
    store.persistEventBatches = (batches) => (commits++, persist(batches));
    const stream = await StreamIdGenerator.fromTables(db, [{ table: 'events', column: 'stream_ordering' }]);
    let group = await store.maxStateGroupId();
    const creator = new EventCreator({
      store,
      serverName: SERVER,
      signingKey: generateSigningKey('a_bench'),
      stream,
      notifier: { notify: () => {} },
      nextStateGroup: () => ++group,
    });
    const users = Array.from({ length: 4 }, (_, i) => `@u${i}:${SERVER}`);
    const rooms = await makeRooms(creator, o.rooms, users);
    const out: RoundFigures[] = [];
    let seq = 0;
    const clk = clockTicksPerSecond();
    for (let round = 0; round < o.rounds; round++) {
      // The pool's connections exist after the first rooms were made; a new one during the round is not counted.
      const pgPids = pgName ? await backendPids(db, pgName) : [];
      const pg0 = ticksOf(pgPids);
      const commits0 = commits;
      const main0 = mainThreadTicks();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < o.events) {
          const i = next++;
          const n = seq++;
          const roomId = rooms[i % rooms.length]!;
          await creator.create({
            roomId,
            type: 'm.room.message',
            sender: users[i % users.length]!,
            content: { msgtype: 'm.text', body: `event path bench #${n} `.padEnd(48, 'x') },
            txn: { deviceId: 'BENCH', scope: txnScope('send', roomId, 'm.room.message'), txnId: `t${n}` },
          });
        }
      };
      await Promise.all(Array.from({ length: o.inflight }, worker));
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const main1 = mainThreadTicks();
      const pg1 = ticksOf(pgPids);
      out.push({
        events_per_s: (o.events / wall) * 1000,
        cpu_ms_per_event: (cpu.user + cpu.system) / 1000 / o.events,
        main_cpu_ms_per_event: main0 !== undefined && main1 !== undefined ? ticksToMs(main1 - main0, clk) / o.events : NaN,
        pg_cpu_ms_per_event: pgPids.length ? ticksToMs(pg1 - pg0, clk) / o.events : NaN,
        wall_ms: wall,
        events_per_commit: o.events / Math.max(1, commits - commits0),
      });
    }
    return out;
  } finally {
    await cleanup();
  }
}

const median = (xs: readonly number[]): number => percentile(xs, 50);

/** The event-creation part: one table over the engines. */
async function benchEvents(o: Opts): Promise<void> {
  const load0 = readLoadavg();
  const rows: string[][] = [['engine', 'round', 'events/s', 'CPU ms/event', 'main thread', 'pg CPU ms/event', 'events/commit', 'wall ms']];
  for (const engine of o.engines) {
    let figs: RoundFigures[];
    try {
      figs = await benchEngine(engine, o);
    } catch (e) {
      console.error(`${engine}: ${(e as Error).message}`);
      continue;
    }
    figs.forEach((f, i) =>
      rows.push([
        engine,
        String(i + 1),
        fmt(f.events_per_s),
        fmt(f.cpu_ms_per_event),
        fmt(f.main_cpu_ms_per_event),
        fmt(f.pg_cpu_ms_per_event),
        fmt(f.events_per_commit),
        fmt(f.wall_ms),
      ]),
    );
    const med = (k: keyof RoundFigures) => fmt(median(figs.map((f) => f[k])));
    rows.push([engine, 'median', med('events_per_s'), med('cpu_ms_per_event'), med('main_cpu_ms_per_event'), med('pg_cpu_ms_per_event'), med('events_per_commit'), '']);
  }
  const load1 = readLoadavg();
  console.log(`event-creation path: ${o.events} events/round over ${o.rooms} rooms, ${o.inflight} in flight, ${o.rounds} round(s); load1 ${fmt(load0.load1)} → ${fmt(load1.load1)} on ${os.cpus().length} CPUs`);
  console.log(formatTable(rows));
}

export async function main(argv: readonly string[]): Promise<number> {
  let o: Opts;
  try {
    o = parse(argv);
  } catch (e) {
    console.error(
      `bench:events: ${(e as Error).message}\nUsage: npm run bench:events -- [--parts events,state-res] [--engines sqlite,postgres] [--events N] [--rooms R] [--inflight C] [--rounds K] [--state-res-versions 10,12,1]`,
    );
    return 2;
  }
  if (o.parts.includes('events')) await benchEvents(o);
  if (!o.parts.includes('state-res')) return 0;
  if (o.parts.includes('events')) console.log('');
  const repeat = 20;
  const processes = 3;
  // A wrong result fails the run: the figures would not be of a working resolver.
  return reportStateRes(await measureStateRes(o.stateResVersions, repeat, processes), repeat, processes) ? 0 : 1;
}

// Run when executed directly (node dist/bench/event-path.js), not when imported.
runIfMain(import.meta.url, main);
