import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchReport } from '../../../src/bench/runner.js';
import { readSharedSecret } from '../../../src/bench/server.js';
import { comparisonTable, processFigures, sampledPids } from '../../../src/bench/shapes.js';

const report = (eps: number, pss: number, ok = true): BenchReport =>
  ({
    ok,
    pids: [11, 12, 13],
    machine: { cpus: 2, clkTck: 100, loadStart: { load1: 0.5, load5: 0, load15: 0 }, loadEnd: { load1: 1.25, load5: 0, load15: 0 } },
    scenarios: [
      {
        name: 'send',
        opsLabel: 'sent event',
        ok,
        rounds: [{ round: 1, ok, problems: [], metrics: { events_per_s: eps, server_peak_pss_mb: pss, client_cpu_ms_per_op: eps / 10_000 } }],
        summary: {
          events_per_s: { n: 1, median: eps, min: eps, max: eps },
          client_cpu_ms_per_op: { n: 1, median: eps / 10_000, min: eps / 10_000, max: eps / 10_000 },
        },
      },
    ],
  }) as unknown as BenchReport;

describe('shapes comparison', () => {
  it('puts one column per shape that ran and only rows of scenarios that ran', () => {
    const t = comparisonTable([
      { shape: 'monolith-sqlite', report: report(812.5, 80) },
      { shape: 'monolith-postgres', report: report(400, 95.5, false) },
      { shape: 'workers-1-persister', skipped: 'no nginx' },
    ]);
    const lines = t.split('\n');
    expect(lines[0]).toMatch(/^figure .*monolith-sqlite\s+monolith-postgres$/);
    expect(t).not.toContain('workers-1');
    expect(lines.find((l) => l.startsWith('send events/s'))).toMatch(/813\s+400$/);
    expect(lines.find((l) => l.startsWith('load generator CPU ms / sent event'))).toMatch(/0\.081\s+0\.040$/);
    expect(lines.find((l) => l.startsWith('server peak PSS MiB'))).toMatch(/80\s+95.5$/);
    expect(lines.find((l) => l.startsWith('load1'))).toContain('0.50 → 1.25');
    expect(lines.find((l) => l.startsWith('checks'))).toMatch(/ok\s+FAILED$/);
    expect(lines.find((l) => l.startsWith('server processes sampled'))).toMatch(/3\s+3$/);
    expect(t).not.toContain('delivery');
  });

  it('samples every Myelin process, and nginx only when asked', () => {
    const myelin = [
      { name: 'master', pid: 10 },
      { name: 'event_persister1', pid: 11 },
    ];
    const nginx = [
      { name: 'nginx', pid: 20 },
      { name: 'nginx-worker', pid: 21 },
    ];
    expect(sampledPids(myelin, nginx, false)).toEqual([10, 11]);
    expect(sampledPids(myelin, nginx, true)).toEqual([10, 11, 20, 21]);
    expect(sampledPids([...myelin, { name: 'dup', pid: 10 }], [], false)).toEqual([10, 11]);
  });

  it('names each process figures and marks which are in the sums', () => {
    const procs = [
      { name: 'master', pid: 10 },
      { name: 'nginx', pid: 20 },
      { name: 'vanished', pid: 30 },
    ];
    const per = [
      { pid: 20, cpuMs: 5, peakRssMb: 8, peakPssMb: 3 },
      { pid: 10, cpuMs: 120, peakRssMb: 110, peakPssMb: 70.5 },
    ];
    expect(processFigures(procs, per, [10])).toEqual([
      { name: 'master', pid: 10, sampled: true, cpu_ms: 120, peak_rss_mb: 110, peak_pss_mb: 70.5 },
      { name: 'nginx', pid: 20, sampled: false, cpu_ms: 5, peak_rss_mb: 8, peak_pss_mb: 3 },
      { name: 'vanished', pid: 30, sampled: false, cpu_ms: NaN, peak_rss_mb: NaN, peak_pss_mb: NaN },
    ]);
  });

  it('reads registration_shared_secret from the YAML config', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-yaml-'));
    try {
      const f = path.join(dir, 'homeserver.yaml');
      writeFileSync(f, 'server_name: bench.local\nregistration_shared_secret: "s3:cr#et"\n');
      expect(readSharedSecret(f)).toBe('s3:cr#et');
      writeFileSync(f, 'server_name: bench.local\n');
      expect(readSharedSecret(f)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
