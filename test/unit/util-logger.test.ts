import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LineBatcher } from '../../src/util/logger.js';

const BUILT = new URL('../../dist/util/logger.js', import.meta.url).href;

/** A stand-in for the stdout writer: records what it is handed, asynchronously or not. */
function recorder() {
  const calls: string[] = [];
  return {
    calls,
    out: {
      write: (s: string) => calls.push(`write ${s}`),
      flushSync: () => void calls.push('flushSync'),
      writeSync: (s: string) => void calls.push(`writeSync ${s}`),
    },
  };
}

describe('LineBatcher', () => {
  it('hands lines on in one string once a chunk is full, in order', () => {
    const r = recorder();
    const b = new LineBatcher(r.out, 10);
    b.write('aaaa\n');
    expect(r.calls).toEqual([]);
    b.write('bbbb\n');
    expect(r.calls).toEqual(['write aaaa\nbbbb\n']);
    b.write('cc\n');
    expect(r.calls).toEqual(['write aaaa\nbbbb\n']);
  });

  it('flush hands on whatever is pending (the timer), and nothing when nothing is', () => {
    const r = recorder();
    const b = new LineBatcher(r.out, 4096);
    b.flush();
    expect(r.calls).toEqual([]);
    b.write('one\n');
    b.write('two\n');
    b.flush();
    expect(r.calls).toEqual(['write one\ntwo\n']);
    b.flush();
    expect(r.calls).toEqual(['write one\ntwo\n']);
  });

  it('flushSync writes what the writer holds, then the pending lines, synchronously (exit)', () => {
    const r = recorder();
    const b = new LineBatcher(r.out, 4096);
    b.write('last words\n');
    b.flushSync();
    expect(r.calls).toEqual(['flushSync', 'writeSync last words\n']);
  });
});

describe('createLogger in a process', () => {
  it('every line reaches stdout, also when the process exits right after logging', () => {
    const code = [
      `import { createLogger } from ${JSON.stringify(BUILT)};`,
      "const log = createLogger({ name: 'test' });",
      // More than a chunk (written as it fills), then a tail that only the exit flush writes.
      'for (let i = 0; i < 500; i++) log.info(`line ${i}`);',
      'process.exit(0);',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, MYELIN_LOG_LEVEL: 'info' } });
    expect(r.status).toBe(0);
    const msgs = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).msg);
    expect(msgs).toEqual(Array.from({ length: 500 }, (_, i) => `line ${i}`));
  });
});
