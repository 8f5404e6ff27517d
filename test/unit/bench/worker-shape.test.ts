import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadDeployment } from '../../../src/workers/deployment.js';
import { generateNginxConfig } from '../../../src/workers/nginx.js';
import { planWorkerDeployment, portsNeeded, redisAddress, writePlanFiles, type PlanInput } from '../../../src/bench/worker-shape.js';

const input = (persisters: number, ports = Array.from({ length: portsNeeded(persisters) }, (_, i) => 20000 + i)): PlanInput => ({
  persisters,
  ports,
  database: { name: 'myelin_bench_x', user: 'postgres', host: '127.0.0.1', port: 5432 },
  redis: { host: '127.0.0.1', port: 6379 },
  replicationSecret: 'sekrit',
  bcryptRounds: 4,
});

describe('worker shape plan', () => {
  it('lays out main, two generic workers, N persisters, a stream writer and a background worker on distinct ports', () => {
    for (const n of [1, 2]) {
      const plan = planWorkerDeployment(input(n));
      const names = plan.instances.map((i) => i.name);
      expect(names[0]).toBe('master');
      expect(names).toEqual([
        'master',
        'generic_worker1',
        'generic_worker2',
        ...Array.from({ length: n }, (_, i) => `event_persister${i + 1}`),
        'stream_writer',
        'background_worker',
      ]);
      const ports = [...plan.instances.flatMap((i) => [i.clientPort, i.replPort].filter((p) => p !== undefined)), plan.nginxPort];
      expect(new Set(ports).size).toBe(ports.length);
      expect(ports.length).toBe(portsNeeded(n));
      // Every process has something to poll /health on.
      for (const i of plan.instances) expect(i.clientPort ?? i.replPort).toBeDefined();
      // Each persister has a replication listener and a client listener (for event sending).
      for (const i of plan.instances.filter((x) => x.name.startsWith('event_persister'))) {
        expect((i.workerFile!.worker_listeners as any[]).map((l) => [l.port, l.resources[0].names])).toEqual([
          [i.replPort, ['replication']],
          [i.clientPort, ['client']],
        ]);
      }
      const o = plan.overrides as any;
      expect(o.stream_writers.events).toEqual(names.filter((x) => x.startsWith('event_persister')));
      expect(o.database.args).toMatchObject({ database: 'myelin_bench_x', cp_max: 3 });
      expect(o.redis).toEqual({ enabled: true, host: '127.0.0.1', port: 6379 });
      expect(o.bcrypt_rounds).toBe(4);
      expect(o.rc_message.per_second).toBeGreaterThanOrEqual(10000);
      // Every writer and the background worker are reachable over replication.
      for (const w of [...o.stream_writers.events, 'stream_writer', 'background_worker']) expect(o.instance_map[w]).toBeDefined();
      expect(o.instance_map.main.port).toBe(plan.instances[0]!.replPort);
    }
  });

  it('honours cp_max and refuses too few ports or no persister', () => {
    expect((planWorkerDeployment({ ...input(1), cpMax: 5 }).overrides as any).database.args.cp_max).toBe(5);
    expect(() => planWorkerDeployment(input(2, [1, 2, 3]))).toThrow(/distinct ports/);
    expect(() => planWorkerDeployment(input(1, Array(portsNeeded(1)).fill(4000)))).toThrow(/distinct ports/);
    expect(() => planWorkerDeployment(input(0))).toThrow(/at least one/);
  });

  it('is a deployment the worker validation accepts and the nginx generator routes', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-plan-'));
    try {
      const plan = planWorkerDeployment(input(2));
      const base = path.join(dir, 'homeserver.yaml');
      writeFileSync(base, stringify({ server_name: 'bench.local', signing_key_path: path.join(dir, 'k.key'), report_stats: false }));
      const { shared, workerFiles } = writePlanFiles(plan, dir, base);
      const d = loadDeployment(shared, workerFiles);
      expect(d.workers).toHaveLength(6);
      const conf = generateNginxConfig(d.shared, d.workers, { listen: `127.0.0.1:${plan.nginxPort}`, pools: plan.nginxPools, standalone: { prefix: dir } });
      expect(conf).toContain(`listen 127.0.0.1:${plan.nginxPort}`);
      const byName = new Map(plan.instances.map((i) => [i.name, i]));
      // Client traffic reaches the generic workers and the stream writer's client listener...
      for (const n of ['generic_worker1', 'generic_worker2', 'stream_writer']) expect(conf).toContain(`127.0.0.1:${byName.get(n)!.clientPort}`);
      /** An upstream's balancing line and servers, in order. */
      const upstream = (name: string) => {
        const body = new RegExp(`upstream ${name} \\{([^}]*)\\}`).exec(conf)![1]!;
        return { balance: /^\s*(hash [^;]*);/m.exec(body)?.[1], servers: [...body.matchAll(/^\s*server ([^;]+);/gm)].map((m) => m[1]) };
      };
      const at = (...names: string[]) => names.map((n) => `127.0.0.1:${byName.get(n)!.clientPort}`);
      // ...event sending goes to the room's persister (writers' order, nginx's plain hash = roomShardFor)...
      expect(upstream('myelin_event_sending')).toEqual({ balance: 'hash $myelin_room_id', servers: at('event_persister1', 'event_persister2') });
      // ...and the other pools stay on the generic workers (and the stream writer), as without persister client listeners.
      for (const pool of ['sync', 'client', 'login', 'pagination']) expect(upstream(`myelin_${pool}`).servers, pool).toEqual(at('generic_worker1', 'generic_worker2', 'stream_writer'));
      for (const pool of ['federation', 'federation_inbound']) expect(upstream(`myelin_${pool}`).servers, pool).toEqual(at('generic_worker1', 'generic_worker2'));
      // ...and no replication listener is ever proxied.
      for (const i of plan.instances) if (i.replPort) expect(conf).not.toContain(`:${i.replPort};`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the Redis address from MYELIN_BENCH_REDIS', () => {
    expect(redisAddress({})).toEqual({ host: '127.0.0.1', port: 6379 });
    expect(redisAddress({ MYELIN_BENCH_REDIS: 'redis://10.0.0.5:6380' })).toEqual({ host: '10.0.0.5', port: 6380 });
  });
});
