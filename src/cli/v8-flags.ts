/**
 * The V8 heap settings of every Myelin process. bin/myelin.js applies them
 * (applyV8Flags) before loading anything else; `myelin run`/`start` calls
 * serverStarted() once the server is up.
 *
 * Default (DEFAULT_V8_FLAGS): `--max-semi-space-size=4` — the young
 * generation grows to at most 4 MiB per semi-space (V8's default on 64-bit:
 * 16 MiB), and only once the server has started: start-up keeps the initial
 * 1 MiB, so an idle process stays small. V8 reads that flag only when the
 * heap is created, too early for the bin, so Myelin implements it itself:
 * after each garbage collection it sets `--semi-space-growth-factor` (which
 * V8 reads at each growth) so that growth stops at the cap (capSemiSpace).
 * `--optimize-for-size` was measured too (it halves the old generation's
 * peak) and left out: it cost 10–40 % more CPU per request.
 *
 * Figures: docs/benchmarks.md, "Third round — memory".
 *
 * Overrides: MYELIN_V8_FLAGS (space-separated) replaces the default, empty
 * for none; `--max-semi-space-size=N` in it is handled as above, any other
 * flag is passed to V8 (e.g. `--optimize-for-size`). When node itself is
 * given a young-generation or optimize-for-size flag (command line or
 * NODE_OPTIONS, e.g. `NODE_OPTIONS=--max-semi-space-size=16`), that choice
 * wins and no default is set.
 *
 * Start-up without the JIT compilers (startupOnlyFlags): start-up
 * code runs once, yet V8 compiled the hottest of it (module evaluation,
 * YAML and config parsing, route tables) with TurboFan on its background
 * threads. That left ≈ 12 MiB in an idle process: the compile jobs' memory
 * in the threads' malloc arenas, the compiler's own pages of the node
 * binary, and the optimised code. So every process starts with TurboFan and
 * Sparkplug off and turns them on once it serves (serverStarted), or after
 * STARTUP_JIT_DEADLINE_MS should start-up take that long: requests are
 * compiled as before. This stands down when a compiler flag (`--opt`,
 * `--no-opt`, `--sparkplug`, `--jitless`, …) is given in MYELIN_V8_FLAGS or
 * to node, and with `MYELIN_V8_FLAGS=` (empty: all of V8's defaults).
 * Figures: docs/benchmarks.md, "Idle memory and cheap requests, Fifth round".
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

export const DEFAULT_V8_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** Node/V8 flags that mean "the user tunes the heap": the defaults stand down. */
const HEAP_FLAGS = new Set(['--optimize-for-size', '--semi-space-growth-factor', '--max-semi-space-size', '--min-semi-space-size']);

/** `--max_semi_space_size=4` → `--max-semi-space-size`; `--no-optimize-for-size` → `--optimize-for-size`. */
function flagName(arg: string): string {
  let name = arg.split('=', 1)[0]!.replace(/_/g, '-');
  if (name.startsWith('--no-')) name = '--' + name.slice(5);
  return name;
}

/** Splits NODE_OPTIONS (space-separated; quotes are not needed for these flags). */
function words(s: string | undefined): string[] {
  return (s ?? '').split(/\s+/).filter(Boolean);
}

/** The V8 flags to apply in this process, given its environment and node's own arguments. */
export function v8FlagsFor(env: NodeJS.ProcessEnv, execArgv: readonly string[]): string[] {
  if (env.MYELIN_V8_FLAGS !== undefined) return words(env.MYELIN_V8_FLAGS);
  const given = [...execArgv, ...words(env.NODE_OPTIONS)].filter((a) => a.startsWith('--')).map(flagName);
  return given.some((n) => HEAP_FLAGS.has(n)) ? [] : [...DEFAULT_V8_FLAGS];
}

/** Flags naming a compiler tier: whoever gives one chooses the compilers, and start-up keeps them. */
const COMPILER_FLAGS = new Set([
  '--opt',
  '--turbofan',
  '--always-opt',
  '--always-turbofan',
  '--sparkplug',
  '--always-sparkplug',
  '--maglev',
  '--jitless',
]);

/**
 * The compilers turned off while the process starts, and how each is turned
 * back on. Sparkplug only where V8 enables it by default (x64, arm64).
 */
export function startupOnlyFlags(arch: string = process.arch): { off: string[]; on: string[] } {
  return arch === 'x64' || arch === 'arm64'
    ? { off: ['--no-opt', '--no-sparkplug'], on: ['--opt', '--sparkplug'] }
    : { off: ['--no-opt'], on: ['--opt'] };
}

/** The compilers come back by then even if the server has not started (a long start-up). */
export const STARTUP_JIT_DEADLINE_MS = 10_000;

/** Whether start-up runs without the JIT compilers (see the header). */
export function deferCompilers(env: NodeJS.ProcessEnv, execArgv: readonly string[]): boolean {
  if (env.MYELIN_V8_FLAGS !== undefined && words(env.MYELIN_V8_FLAGS).length === 0) return false;
  const given = [...execArgv, ...words(env.NODE_OPTIONS), ...words(env.MYELIN_V8_FLAGS)].filter((a) => a.startsWith('--')).map(flagName);
  return !given.some((n) => COMPILER_FLAGS.has(n));
}

export interface V8FlagPlan {
  /** Passed to v8.setFlagsFromString at once. */
  now: string[];
  /** The young-generation cap (MiB per semi-space) to enforce once the server has started. */
  semiSpaceCapMiB?: number;
  /** Passed to v8.setFlagsFromString once the server has started (the compilers back on). */
  afterStart?: string[];
}

/** Splits the flags into what V8 takes at once and the semi-space cap Myelin enforces. */
export function planV8Flags(flags: readonly string[]): V8FlagPlan {
  const plan: V8FlagPlan = { now: [] };
  for (const f of flags) {
    if (flagName(f) === '--max-semi-space-size') {
      const n = Number(f.split('=', 2)[1]);
      if (!Number.isFinite(n) || n < 1) throw new Error(`MYELIN_V8_FLAGS: ${f}: expected a size in MiB of at least 1`);
      plan.semiSpaceCapMiB = n;
    } else {
      plan.now.push(f);
    }
  }
  // Start-up keeps the initial 1 MiB semi-spaces; growth is allowed once started.
  if (plan.semiSpaceCapMiB !== undefined) plan.now.push('--semi-space-growth-factor=1');
  return plan;
}

/**
 * Lets V8 grow the young generation up to `capMiB` per semi-space and no
 * further. V8 multiplies a semi-space by the growth factor when enough
 * survives a scavenge; after each GC the factor is set so that the next
 * growth lands on the cap (cap ÷ current size), or to 1 at the cap. GC
 * notifications arrive asynchronously, so two growths within one turn of the
 * event loop could overshoot once; with this factor that takes two growths
 * in a row at the larger size, which a server rarely sees. Returns a
 * function that stops it.
 */
export function capSemiSpace(capMiB: number): () => void {
  const cap = capMiB * 1024 * 1024;
  let factor = 0;
  const check = () => {
    // new_space's size counts both semi-spaces.
    const semi = (getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2;
    const want = semi > 0 ? Math.max(1, Math.floor(cap / semi)) : 1;
    if (want !== factor) {
      setFlagsFromString(`--semi-space-growth-factor=${want}`);
      factor = want;
    }
  };
  check();
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

/** Set by applyV8Flags: what to do once the server has started. */
let onStarted: (() => void) | undefined;
/** Set by applyV8Flags: turns the compilers back on (once). */
let compilersOn: (() => void) | undefined;

/** Applies the flags for this process now (bin/myelin.js, before anything else is loaded). */
export function applyV8Flags(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): V8FlagPlan {
  const plan = planV8Flags(v8FlagsFor(env, execArgv));
  if (deferCompilers(env, execArgv)) {
    const { off, on } = startupOnlyFlags();
    plan.now.push(...off);
    plan.afterStart = on;
  }
  for (const f of plan.now) setFlagsFromString(f);
  const cap = plan.semiSpaceCapMiB;
  onStarted = cap === undefined ? undefined : () => void capSemiSpace(cap);
  const after = plan.afterStart;
  if (after) {
    const deadline = setTimeout(() => compilersOn?.(), STARTUP_JIT_DEADLINE_MS);
    deadline.unref();
    compilersOn = () => {
      compilersOn = undefined;
      clearTimeout(deadline);
      for (const f of after) setFlagsFromString(f);
    };
  }
  return plan;
}

/** The server is up: the compilers are back on, and the young generation may grow to its cap. */
export function serverStarted(): void {
  compilersOn?.();
  onStarted?.();
  onStarted = undefined;
}
