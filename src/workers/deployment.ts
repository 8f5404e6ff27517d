/**
 * Loads a whole worker deployment: the shared configuration and every worker
 * file (each merged over the shared one, as the worker process itself loads
 * it), then checks it as a whole (duplicate names, writers without a worker).
 * Used by `myelin proxy-config` and `myelinctl`.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import { workerSetProblems } from '../config/workers.js';

export interface WorkerFile {
  path: string;
  config: LoadedConfig;
}

export interface Deployment {
  configPaths: string[];
  shared: LoadedConfig;
  workers: WorkerFile[];
}

/** The *.yaml / *.yml files of a directory, sorted by name. */
export function workerFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => resolve(join(dir, f)));
}

export function loadDeployment(configPaths: string[], workerPaths: string[]): Deployment {
  const shared = loadConfig(configPaths);
  const workers: WorkerFile[] = [];
  for (const p of workerPaths) {
    try {
      workers.push({ path: p, config: loadConfig([...configPaths, p]) });
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${p}: ${e.message}`);
      throw e;
    }
  }
  const problems = workerSetProblems(shared, workers);
  if (problems.length) throw new ConfigError(`invalid worker deployment:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return { configPaths: configPaths.map((p) => resolve(p)), shared, workers };
}
