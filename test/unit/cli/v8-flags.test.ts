import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_V8_FLAGS, planV8Flags, v8FlagsFor } from '../../../src/cli/v8-flags.js';

const BIN = fileURLToPath(new URL('../../../bin/myelin.js', import.meta.url));
const BUILT = new URL('../../../dist/cli/v8-flags.js', import.meta.url).href;

describe('v8FlagsFor', () => {
  it('gives the memory defaults when nothing else is said', () => {
    expect(v8FlagsFor({}, [])).toEqual([...DEFAULT_V8_FLAGS]);
    expect(v8FlagsFor({ NODE_OPTIONS: '--enable-source-maps' }, ['--cpu-prof'])).toEqual([...DEFAULT_V8_FLAGS]);
  });

  it('MYELIN_V8_FLAGS replaces them; empty means none', () => {
    expect(v8FlagsFor({ MYELIN_V8_FLAGS: '' }, [])).toEqual([]);
    expect(v8FlagsFor({ MYELIN_V8_FLAGS: ' --max-semi-space-size=8  --stack-size=2000 ' }, [])).toEqual(['--max-semi-space-size=8', '--stack-size=2000']);
  });

  it('stands down when node is given a heap flag of its own', () => {
    expect(v8FlagsFor({}, ['--max-semi-space-size=8'])).toEqual([]);
    expect(v8FlagsFor({}, ['--max_semi_space_size=8'])).toEqual([]);
    expect(v8FlagsFor({ NODE_OPTIONS: '--no-optimize-for-size' }, [])).toEqual([]);
    expect(v8FlagsFor({ NODE_OPTIONS: '--inspect --min-semi-space-size=2' }, [])).toEqual([]);
  });
});

describe('planV8Flags', () => {
  it('keeps 1 MiB semi-spaces during start-up and caps them afterwards', () => {
    expect(planV8Flags(['--optimize-for-size', '--max-semi-space-size=4'])).toEqual({
      now: ['--optimize-for-size', '--semi-space-growth-factor=1'],
      semiSpaceCapMiB: 4,
    });
    expect(planV8Flags(['--optimize-for-size'])).toEqual({ now: ['--optimize-for-size'] });
    expect(() => planV8Flags(['--max-semi-space-size=0'])).toThrow(/MYELIN_V8_FLAGS/);
  });
});

describe('in a process (flags set after the heap exists, as bin/myelin.js does)', () => {
  /** Size of the new space (both semi-spaces) after churning short-lived objects. */
  const newSpace = (env: NodeJS.ProcessEnv, started: boolean): number => {
    const code = [
      "import v8 from 'node:v8';",
      `import { applyV8Flags, serverStarted } from ${JSON.stringify(BUILT)};`,
      'applyV8Flags();',
      started ? 'serverStarted();' : '',
      'let keep = [];',
      'const churn = (n) => { for (let i = 0; i < n; i++) { keep.push({ a: i, b: "x" + i }); if (keep.length > 20000) keep = []; } };',
      // In slices, like requests, so that the GC observer runs in between (as it does in a server).
      'for (let k = 0; k < 400; k++) { churn(5000); await new Promise((r) => setImmediate(r)); }',
      "console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, NODE_OPTIONS: '', ...env }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return Number(r.stdout.trim()) / (1024 * 1024);
  };

  it('the young generation stays at 1 MiB before start, grows to the cap after, and to V8 default without flags', () => {
    expect(newSpace({ MYELIN_V8_FLAGS: undefined }, false)).toBeLessThanOrEqual(2);
    const capped = newSpace({ MYELIN_V8_FLAGS: undefined }, true);
    expect(capped).toBeGreaterThan(2);
    expect(capped).toBeLessThanOrEqual(8);
    expect(newSpace({ MYELIN_V8_FLAGS: '' }, true)).toBeGreaterThan(8);
  });

  it('bin/myelin.js runs the CLI', () => {
    const r = spawnSync(process.execPath, [BIN, 'help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: myelin');
  });
});
