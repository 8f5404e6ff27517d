/**
 * The follower benchmark's pure parts: the deployment plan with followers
 * (generic workers that serve nothing: no client listener, not in
 * instance_map, not proxied) and its command line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { FOLLOWER_DEFAULTS, parseFollowerArgs } from '../../../src/bench/follower.js';
import { planWorkerDeployment, portsNeeded, writePlanFiles, type PlanInput } from '../../../src/bench/worker-shape.js';
import { loadDeployment } from '../../../src/workers/deployment.js';
import { generateNginxConfig } from '../../../src/workers/nginx.js';

const input = (persisters: number, followers: number): PlanInput => ({
  persisters,
  followers,
  ports: Array.from({ length: portsNeeded(persisters, followers) }, (_, i) => 21000 + i),
  database: { name: 'myelin_bench_x', user: 'postgres', host: '127.0.0.1', port: 5432 },
  redis: { host: '127.0.0.1', port: 6379 },
  replicationSecret: 'sekrit',
  bcryptRounds: 4,
});

describe('worker shape plan with followers', () => {
  it('adds followers with a replication and a client listener, outside instance_map and nginx', () => {
    const plan = planWorkerDeployment(input(2, 1));
    const f = plan.instances.find((i) => i.name === 'follower1')!;
    expect(f).toBeDefined();
    expect(f.clientPort).toBeDefined();
    expect(f.replPort).toBeDefined();
    expect((f.workerFile as any).worker_listeners).toEqual([
      expect.objectContaining({ port: f.replPort, resources: [{ names: ['replication'] }] }),
      expect.objectContaining({ port: f.clientPort, resources: [{ names: ['client'] }] }),
    ]);
    for (const pool of Object.values(plan.nginxPools)) expect(pool).not.toContain('follower1');
    const o = plan.overrides as any;
    expect(o.instance_map.follower1).toBeUndefined();
    const ports = [...plan.instances.flatMap((i) => [i.clientPort, i.replPort].filter((p) => p !== undefined)), plan.nginxPort];
    expect(new Set(ports).size).toBe(portsNeeded(2, 1));
    expect(() => planWorkerDeployment({ ...input(1, 1), ports: input(1, 0).ports })).toThrow(/distinct ports/);
  });

  it('gives the client-serving generic workers a default-sized pool', () => {
    const plan = planWorkerDeployment(input(1, 0));
    for (const name of ['generic_worker1', 'generic_worker2']) {
      const w = plan.instances.find((i) => i.name === name)!;
      expect((w.workerFile as any).database.args).toMatchObject({ database: 'myelin_bench_x', cp_max: 10 });
    }
    expect((plan.overrides as any).database.args.cp_max).toBe(3);
    const small = planWorkerDeployment({ ...input(1, 0), cpMaxClient: 4 });
    expect((small.instances[1]!.workerFile as any).database.args.cp_max).toBe(4);
  });

  it('is accepted by the worker validation, and nginx never routes to a follower', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-follower-'));
    try {
      const plan = planWorkerDeployment(input(2, 1));
      const base = path.join(dir, 'homeserver.yaml');
      writeFileSync(base, stringify({ server_name: 'bench.local', signing_key_path: path.join(dir, 'k.key'), report_stats: false }));
      const { shared, workerFiles } = writePlanFiles(plan, dir, base);
      const d = loadDeployment(shared, workerFiles);
      const conf = generateNginxConfig(d.shared, d.workers, { listen: '127.0.0.1:1' });
      const follower = plan.instances.find((i) => i.name === 'follower1')!;
      expect(conf).not.toContain(`:${follower.replPort}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('follower bench arguments', () => {
  it('has defaults of 40 events/s with two persisters', () => {
    expect(parseFollowerArgs([])).toEqual(FOLLOWER_DEFAULTS);
    expect(FOLLOWER_DEFAULTS.rate).toBe(40);
  });

  it('parses flags in both spellings and refuses bad ones', () => {
    expect(parseFollowerArgs(['--rate', '10', '--duration=5', '--idle', '0', '--warmup=3', '--persisters', '1', '--rooms', '2', '--json', 'x.json'])).toEqual({
      persisters: 1,
      rate: 10,
      durationS: 5,
      idleS: 0,
      warmupS: 3,
      rooms: 2,
      jsonFile: 'x.json',
    });
    expect(parseFollowerArgs(['--help'])).toBe('help');
    expect(() => parseFollowerArgs(['--rate', 'fast'])).toThrow(/--rate/);
    expect(() => parseFollowerArgs(['--persisters', '0'])).toThrow(/--persisters/);
    expect(() => parseFollowerArgs(['--warmup', '-1'])).toThrow(/--warmup/);
    expect(() => parseFollowerArgs(['--bogus'])).toThrow(/unknown option/);
  });
});
