// TEMPORARY probe (deleted before report)
import { it } from 'vitest';
import { startServer } from './homeserver.js';
import type { WorkerDeployment } from './worker-deployment.js';
import { writeFileSync } from 'node:fs';
it('probe', async () => {
  const d = (await startServer({ shape: 'workers' })) as WorkerDeployment;
  writeFileSync('/tmp/wrun/probe.json', JSON.stringify({ base: d.baseUrl, dir: d.dir, server: d.serverName, token: '', inst: Object.fromEntries([...d.instances].map(([k, v]) => [k, { c: v.clientPort, r: v.replPort }])) }));
  await new Promise((r) => setTimeout(r, 1_500_000));
  await d.stop();
}, 2_000_000);
