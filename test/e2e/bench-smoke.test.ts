/**
 * Smoke run of the load generator against a real Myelin (monolith, SQLite),
 * started through its own CLI. A tiny workload of every scenario; asserts
 * counts (every event delivered exactly once, all joins done, ...), never
 * time. Skips itself until the server has been built (dist/cli/main.js).
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/bench/args.js';
import { runBench, type BenchReport } from '../../src/bench/runner.js';
import { MYELIN_CLI, startMyelin, type RunningMyelin } from '../../src/bench/server.js';

const built = existsSync(MYELIN_CLI);
if (!built) console.warn(`bench-smoke: skipped — ${MYELIN_CLI} does not exist yet (run "npm run build" once the server CLI exists)`);

describe.skipIf(!built)('bench smoke run against a real Myelin', () => {
  let server: RunningMyelin;
  let report: BenchReport;

  beforeAll(async () => {
    server = await startMyelin({ database: 'sqlite', bcryptRounds: 4 });
    const args = ['--base-url', server.baseUrl, '--users', '3', '--rooms', '2', '--duration', '0.5', '--concurrency', '2',
      '--events', '3', '--history', '30', '--drain', '10', '--seed', 'smoke', '--pid', String(server.pid), '--quiet',
      '--key-users', '3', '--key-devices', '2', '--scenario', 'all,keys-query,keys-claim'];
    if (server.sharedSecret) args.push('--shared-secret', server.sharedSecret);
    report = await runBench(parseArgs(args)!, { log: () => {} });
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
  });

  const m = (name: string) => {
    const s = report.scenarios.find((x) => x.name === name);
    expect(s, `scenario ${name} ran`).toBeDefined();
    return s!.rounds[0]!.metrics;
  };
  const problems = (name: string) => report.scenarios.find((x) => x.name === name)?.rounds[0]?.problems ?? [];

  it('send: events acknowledged without errors', () => {
    expect(problems('send')).toEqual([]);
    expect(m('send').sent).toBeGreaterThan(0);
    expect(m('send').errors).toBe(0);
  });

  it('delivery: every acknowledged event reached every member exactly once', () => {
    const d = m('delivery');
    expect(problems('delivery')).toEqual([]);
    expect(d.sent).toBeGreaterThan(0);
    expect(d.expected).toBe(d.sent! * 3);
    expect(d.delivered).toBe(d.expected);
    expect(d.missing).toBe(0);
    expect(d.duplicates).toBe(0);
    expect(d.unexpected).toBe(0);
  });

  it('fanout: every message reached all members', () => {
    const f = m('fanout');
    expect(problems('fanout')).toEqual([]);
    expect(f.members).toBe(3);
    expect(f.reached_all).toBe(f.messages);
    expect(f.missing).toBe(0);
  });

  it('initial-sync: all rooms in the first sync, the new message in the incremental one', () => {
    expect(problems('initial-sync')).toEqual([]);
    expect(m('initial-sync').rooms).toBe(2);
    expect(m('initial-sync').initial_bytes).toBeGreaterThan(0);
  });

  it('history: pagination finds every message', () => {
    expect(problems('history')).toEqual([]);
    expect(m('history').room_messages).toBe(30);
  });

  it('joins, versions, whoami: no errors', () => {
    for (const s of ['joins', 'versions', 'whoami']) expect(problems(s), s).toEqual([]);
    expect(m('joins').joins).toBe(m('joins').rooms! * 2);
  });

  it('keys-query and keys-claim: every device answered, no one-time key twice', () => {
    expect(problems('keys-query')).toEqual([]);
    expect(m('keys-query').devices_returned).toBe(6);
    expect(problems('keys-claim')).toEqual([]);
    expect(m('keys-claim').keys_claimed).toBe(6);
    expect(m('keys-claim').duplicate_one_time_keys).toBe(0);
  });

  it('sampled the server process', () => {
    expect(m('send').server_cpu_ms).toBeGreaterThanOrEqual(0);
    expect(m('send').server_peak_pss_mb).toBeGreaterThan(0);
  });
});
