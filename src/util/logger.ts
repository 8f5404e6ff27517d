/**
 * Logging with pino. The level comes from `log_config` (a Synapse/Python
 * logging YAML: its `root.level`), else `log_level`, else MYELIN_LOG_LEVEL,
 * else info.
 */
import { readFileSync } from 'node:fs';
import { destination, pino, type Logger } from 'pino';
import { parse as parseYaml } from 'yaml';

const PY_LEVELS: Record<string, string> = {
  DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal',
};

export function levelFromLogConfig(path: string): string | undefined {
  const doc = parseYaml(readFileSync(path, 'utf8')) as any;
  const lvl = doc?.root?.level ?? doc?.level;
  if (typeof lvl !== 'string') return undefined;
  return PY_LEVELS[lvl.toUpperCase()] ?? lvl.toLowerCase();
}

export function createLogger(opts: { logConfig?: string; level?: string; name: string }): Logger {
  let level = process.env.MYELIN_LOG_LEVEL ?? opts.level ?? 'info';
  if (opts.logConfig) level = levelFromLogConfig(opts.logConfig) ?? level;
  // Asynchronous, buffered stdout writes: a request log line must neither
  // block the event loop nor cost a write(2) of its own. Lines are written in
  // 4 KiB chunks, at least every 250 ms, and whatever is pending at exit.
  const dest = destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => dest.flush(), 250);
  timer.unref();
  process.once('exit', () => {
    try {
      dest.flushSync();
    } catch {
      /* stdout already closed */
    }
  });
  return pino({ level, name: opts.name, base: { proc: opts.name } }, dest);
}
