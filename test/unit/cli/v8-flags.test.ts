import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_V8_FLAGS, deferCompilers, planV8Flags, startupOnlyFlags, v8FlagsFor } from '../../../src/cli/v8-flags.js';

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

describe('start-up without the JIT compilers', () => {
  it('is on by default, also with other MYELIN_V8_FLAGS', () => {
    expect(deferCompilers({}, [])).toBe(true);
    expect(deferCompilers({ MYELIN_V8_FLAGS: '--optimize-for-size --max-semi-space-size=1' }, ['--cpu-prof'])).toBe(true);
  });

  it('stands down for a compiler flag anywhere, and for MYELIN_V8_FLAGS= (all of V8 defaults)', () => {
    expect(deferCompilers({ MYELIN_V8_FLAGS: '--opt' }, [])).toBe(false);
    expect(deferCompilers({ MYELIN_V8_FLAGS: ' ' }, [])).toBe(false);
    expect(deferCompilers({}, ['--no-opt'])).toBe(false);
    expect(deferCompilers({}, ['--jitless'])).toBe(false);
    expect(deferCompilers({ NODE_OPTIONS: '--inspect --always_sparkplug' }, [])).toBe(false);
  });

  it('turns off Sparkplug only where V8 enables it by default', () => {
    expect(startupOnlyFlags('x64')).toEqual({ off: ['--no-opt', '--no-sparkplug'], on: ['--opt', '--sparkplug'] });
    expect(startupOnlyFlags('arm64').off).toContain('--no-sparkplug');
    expect(startupOnlyFlags('s390x')).toEqual({ off: ['--no-opt'], on: ['--opt'] });
  });
});

describe('in a process (flags set after the heap exists, as bin/myelin.js does)', () => {
  /**
   * Runs a hot function in event-loop turns, at most 200, until TurboFan
   * has optimised it; prints the turns it took (-1: never) before and after
   * serverStarted().
   */
  const turnsToOptimise = (env: NodeJS.ProcessEnv): { before: number; after: number } => {
    const code = [
      `import { applyV8Flags, serverStarted } from ${JSON.stringify(BUILT)};`,
      'applyV8Flags();',
      'function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }',
      'const TURBOFANNED = 1 << 6;', // V8's OptimizationStatus::kTurboFanned
      'const spin = async () => {',
      '  for (let k = 0; k < 200; k++) {',
      '    for (let j = 0; j < 200; j++) hot(500);',
      '    await new Promise((r) => setImmediate(r));',
      '    if (%GetOptimizationStatus(hot) & TURBOFANNED) return k;',
      '  }',
      '  return -1;',
      '};',
      'const before = await spin();',
      'serverStarted();',
      'console.log(JSON.stringify({ before, after: await spin() }));',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', code], {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim());
  };

  it('start-up code is not optimised; once the server has started, hot code is', () => {
    const deferred = turnsToOptimise({ MYELIN_V8_FLAGS: undefined });
    expect(deferred.before).toBe(-1);
    expect(deferred.after).toBeGreaterThanOrEqual(0);
    // With a compiler flag given, V8 optimises from the start.
    expect(turnsToOptimise({ MYELIN_V8_FLAGS: '--opt' }).before).toBeGreaterThanOrEqual(0);
  });

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
