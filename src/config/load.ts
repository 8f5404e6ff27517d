/**
 * Loads one or more YAML files (later files override earlier ones, key by
 * key at the top level, like Synapse's repeated --config-path), validates them
 * and resolves relative paths against the first file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { getRoomVersion } from '../matrix/room-versions.js';
import { configSchema, KNOWN_TOP_LEVEL_KEYS, type HomeserverConfig } from './schema.js';
import { workerDeploymentProblems } from './workers.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig extends HomeserverConfig {
  /** Directory of the first config file: relative paths resolve against it. */
  configDir: string;
  configPaths: string[];
  /** Unknown top-level keys, for a single warning at start-up. */
  unknownKeys: string[];
}

export function readYamlFiles(paths: string[]): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const p of paths) {
    let text: string;
    try {
      text = readFileSync(p, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${p}: ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw new ConfigError(`config file ${p} is not valid YAML: ${(e as Error).message}`);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${p}: expected a mapping at the top level`);
    Object.assign(merged, doc);
  }
  return merged;
}

export function validateConfig(raw: Record<string, unknown>, configDir: string, configPaths: string[] = []): LoadedConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const path = i.path.length ? i.path.join('.') : '(top level)';
      return `  ${path}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const cfg = result.data;
  const abs = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(configDir, p));
  cfg.signing_key_path = abs(cfg.signing_key_path);
  cfg.tls_certificate_path = abs(cfg.tls_certificate_path);
  cfg.tls_private_key_path = abs(cfg.tls_private_key_path);
  cfg.log_config = abs(cfg.log_config);
  cfg.media_store_path = abs(cfg.media_store_path);
  cfg.registration_shared_secret_path = abs(cfg.registration_shared_secret_path);
  if (cfg.database.name === 'sqlite3' && cfg.database.args.database !== ':memory:') {
    cfg.database.args.database = abs(cfg.database.args.database)!;
  }
  if (cfg.registration_shared_secret === undefined && cfg.registration_shared_secret_path) {
    try {
      cfg.registration_shared_secret = readFileSync(cfg.registration_shared_secret_path, 'utf8').trim();
    } catch (e) {
      throw new ConfigError(`registration_shared_secret_path: cannot read: ${(e as Error).message}`);
    }
  }
  for (const l of cfg.listeners) {
    if (l.tls && (!cfg.tls_certificate_path || !cfg.tls_private_key_path)) {
      throw new ConfigError('listeners: a listener has tls: true but tls_certificate_path and tls_private_key_path are not both set');
    }
  }
  const workerProblems = workerDeploymentProblems(cfg);
  if (workerProblems.length) throw new ConfigError(`invalid worker deployment:\n${workerProblems.map((p) => `  ${p}`).join('\n')}`);
  if (cfg.default_room_version !== undefined && !getRoomVersion(cfg.default_room_version)) {
    throw new ConfigError(`invalid configuration:\n  default_room_version: unknown room version "${cfg.default_room_version}"`);
  }
  const unknownKeys = Object.keys(raw).filter((k) => !KNOWN_TOP_LEVEL_KEYS.has(k));
  return Object.assign(cfg, { configDir, configPaths, unknownKeys });
}

export function loadConfig(paths: string[]): LoadedConfig {
  if (paths.length === 0) throw new ConfigError('no config file given (use -c FILE)');
  const raw = readYamlFiles(paths);
  return validateConfig(raw, dirname(resolve(paths[0]!)), paths.map((p) => resolve(p)));
}
