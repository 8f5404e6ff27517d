/**
 * Logging with pino. The level comes from `log_config` (a Synapse/Python
 * logging YAML: its `root.level`), else `log_level`, else MYELIN_LOG_LEVEL,
 * else info.
 */
import { readFileSync, writeSync } from 'node:fs';
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

/** Log lines are handed to stdout in chunks of at least this many characters. */
const LOG_CHUNK = 4096;

/** Where LineBatcher hands its chunks (sonic-boom on stdout, in createLogger). */
export interface ChunkWriter {
  /** Writes `text` (in order with every other write). */
  write(text: string): unknown;
  /** Writes what `write` was given and has not written yet, before returning. */
  flushSync(): void;
  /** Writes `text` before returning, after everything given to `write`. */
  writeSync(text: string): void;
}

/**
 * Collects log lines and hands them to the stdout writer (sonic-boom) as
 * one string per chunk. sonic-boom's own buffering (`minLength`) measures
 * and concatenates its pending buffer on every line, which cost more per
 * request log line than pino's formatting; here a line costs an array push.
 */
export class LineBatcher {
  private lines: string[] = [];
  private chars = 0;

  constructor(
    private readonly out: ChunkWriter,
    private readonly chunk = LOG_CHUNK,
  ) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.chunk) this.flush();
    return true;
  }

  /** Hands the pending lines to the writer. */
  flush(): void {
    const text = this.take();
    if (text) this.out.write(text);
  }

  /** Writes everything pending before returning (exit: an asynchronous write would not happen). */
  flushSync(): void {
    this.out.flushSync();
    const text = this.take();
    if (text) this.out.writeSync(text);
  }

  private take(): string {
    if (this.lines.length === 0) return '';
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    return text;
  }
}

/** write(2) until all of `text` is written; a full non-blocking pipe is retried for up to about a second. */
function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text);
  for (let attempts = 0; buf.length > 0; ) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || ++attempts > 100) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

export function createLogger(opts: { logConfig?: string; level?: string; name: string }): Logger {
  let level = process.env.MYELIN_LOG_LEVEL ?? opts.level ?? 'info';
  if (opts.logConfig) level = levelFromLogConfig(opts.logConfig) ?? level;
  // Buffered stdout writes: a request log line must not cost a write(2) of
  // its own. Lines are written in 4 KiB chunks, at least every 250 ms, and
  // whatever is pending at exit. Each chunk is written synchronously: an
  // asynchronous write still in flight at exit would land after the exit
  // flush, out of order.
  const stdout = destination({ dest: 1, sync: true });
  const dest = new LineBatcher({
    write: (text) => stdout.write(text),
    flushSync: () => stdout.flushSync(),
    writeSync: (text) => writeAllSync(1, text),
  });
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
