/**
 * The whole load generator against an in-memory fake homeserver: every
 * scenario runs, counts come out right, misbehaviour (lost or duplicated
 * events) is detected, and an unreachable or closed target fails clearly.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseArgs } from '../../../src/bench/args.js';
import { main } from '../../../src/bench/main.js';
import { runBench, TargetError } from '../../../src/bench/runner.js';
import { FakeHomeserver, type FakeOptions } from './fake-homeserver.js';

let fake: FakeHomeserver | undefined;
afterEach(async () => {
  await fake?.stop();
  fake = undefined;
});

async function start(o: FakeOptions) {
  fake = new FakeHomeserver(o);
  return fake.start();
}

const tiny = (baseUrl: string, ...extra: string[]) =>
  parseArgs([
    '--base-url', baseUrl, '--users', '3', '--rooms', '2', '--duration', '0.3', '--concurrency', '2',
    '--events', '3', '--history', '25', '--seed', 'test', '--quiet',
    ...(extra.includes('--drain') ? [] : ['--drain', '2']), ...extra,
  ])!;

const figures = (r: Awaited<ReturnType<typeof runBench>>, name: string) => r.scenarios.find((s) => s.name === name)!.rounds[0]!.metrics;

describe('runBench against a fake homeserver', () => {
  it('runs every scenario with shared-secret registration and accounts exactly once', async () => {
    const url = await start({ sharedSecret: 'shh' });
    const logs: string[] = [];
    const r = await runBench(tiny(url, '--shared-secret', 'shh', '--pid', String(process.pid)), { log: (l) => logs.push(l) });
    for (const s of r.scenarios) expect({ name: s.name, ok: s.ok, problems: s.rounds[0]!.problems }).toEqual({ name: s.name, ok: true, problems: [] });
    expect(r.scenarios.map((s) => s.name)).toEqual(['send', 'delivery', 'fanout', 'initial-sync', 'empty-sync', 'history', 'joins', 'versions', 'whoami']);
    expect(r.target.registration).toBe('shared-secret');
    expect(figures(r, 'send').sent).toBeGreaterThan(0);
    const d = figures(r, 'delivery');
    expect(d.receivers).toBe(3);
    expect(d.expected).toBe(d.sent! * 3);
    expect(d.delivered).toBe(d.expected);
    expect(d.missing).toBe(0);
    expect(d.duplicates).toBe(0);
    expect(d.server_cpu_ms).toBeGreaterThanOrEqual(0);
    expect(d.server_peak_pss_mb).toBeGreaterThan(0);
    // The load generator's own CPU over the round, also per operation.
    expect(d.client_cpu_ms).toBeGreaterThan(0);
    expect(d.client_cpu_ms_per_op).toBeCloseTo(d.client_cpu_ms! / d.sent!, 9);
    // Reading the servers' /proc is reported apart, not in client_cpu_ms (sampled every 200 ms; the round may be shorter).
    expect(d.client_sampling_cpu_ms).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(d.client_sampling_cpu_ms)).toBe(true);
    expect(logs.some((l) => /client_cpu_ms_per_sent_event\s/.test(l))).toBe(true);
    const f = figures(r, 'fanout');
    expect(f.members).toBe(3);
    expect(f.reached_all).toBe(f.messages);
    const is = figures(r, 'initial-sync');
    expect(is.rooms).toBe(2);
    expect(is.initial_bytes).toBeGreaterThan(is.incremental_bytes!);
    const h = figures(r, 'history');
    expect(h.room_messages).toBe(25);
    expect(h.events! % 1).toBe(0);
    const j = figures(r, 'joins');
    expect(j.joins).toBe(j.rooms! * 2);
    expect(figures(r, 'versions').requests).toBeGreaterThan(0);
    expect(figures(r, 'whoami').requests).toBeGreaterThan(0);
    // All users were named after the run id.
    expect(r.runId).toMatch(/^b[0-9a-z]{7}$/);
    expect(logs.some((l) => l.includes('== delivery'))).toBe(true);
  });

  it('registers through open registration (m.login.dummy) and reports median/range over rounds', async () => {
    const url = await start({ openRegistration: true });
    const r = await runBench(tiny(url, '--scenario', 'versions,send', '--rounds', '3'), { log: () => {} });
    expect(r.target.registration).toBe('open');
    const send = r.scenarios.find((s) => s.name === 'send')!;
    expect(send.rounds).toHaveLength(3);
    const vals = send.rounds.map((x) => x.metrics.sent!).sort((a, b) => a - b);
    expect(send.summary.sent).toEqual({ n: 3, median: vals[1], min: vals[0], max: vals[2] });
  });

  it('detects lost events', async () => {
    const url = await start({ sharedSecret: 'shh', dropEvery: 5 });
    const r = await runBench(tiny(url, '--shared-secret', 'shh', '--scenario', 'delivery', '--drain', '0.5'), { log: () => {} });
    const d = figures(r, 'delivery');
    expect(d.missing).toBeGreaterThan(0);
    expect(r.ok).toBe(false);
  });

  it('detects duplicated events', async () => {
    const url = await start({ sharedSecret: 'shh', duplicateEvery: 4 });
    const r = await runBench(tiny(url, '--shared-secret', 'shh', '--scenario', 'delivery'), { log: () => {} });
    const d = figures(r, 'delivery');
    expect(d.duplicates).toBeGreaterThan(0);
    expect(d.missing).toBe(0);
    expect(r.scenarios[0]!.ok).toBe(false);
  });

  it('fails clearly when registration is refused', async () => {
    const url = await start({});
    await expect(runBench(tiny(url), { log: () => {} })).rejects.toThrow(/refused open registration .*403 M_FORBIDDEN/);
    await expect(runBench(tiny(url, '--shared-secret', 'x'), { log: () => {} })).rejects.toThrow(TargetError);
  });

  it('fails clearly with a wrong shared secret', async () => {
    const url = await start({ sharedSecret: 'right' });
    await expect(runBench(tiny(url, '--shared-secret', 'wrong'), { log: () => {} })).rejects.toThrow(/refused shared-secret registration.*HMAC/);
  });

  it('fails clearly (exit 2) when the target is unreachable', async () => {
    // A port that was free a moment ago and has nothing listening now.
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    await expect(runBench(tiny(`http://127.0.0.1:${port}`), { log: () => {} })).rejects.toThrow(/target unreachable.*ECONNREFUSED/);
    const errs: string[] = [];
    const orig = console.error;
    console.error = (m: string) => errs.push(m);
    try {
      expect(await main(['--base-url', `http://127.0.0.1:${port}`])).toBe(2);
      expect(await main(['--users', 'x'])).toBe(2);
    } finally {
      console.error = orig;
    }
    expect(errs[0]).toMatch(/unreachable/);
  });
});
