/**
 * The process settings a launcher gives each Myelin process it starts:
 * `myelinctl`, the systemd units in contrib/systemd (as `Environment=`
 * lines) and the bench's worker shape, which starts processes as myelinctl
 * does. glibc reads its malloc settings, and node the size of V8's thread
 * pool, when the process starts, before any of Myelin's code runs, so
 * unlike the V8 flags of v8-flags.ts `myelin run` cannot set these itself.
 *
 * `--v8-pool-size=1` (LAUNCH_NODE_ARGS; node's default is 4 threads): one
 * background thread for V8's compile jobs and GC helper tasks. TurboFan
 * keeps compiling in a busy process (a persister taking 40 events a second
 * allocated ≈ 7 MB a second of compiler memory, long after start-up), and
 * each thread running compile jobs kept its own malloc arena of freed
 * compiler memory; with one thread there is one such arena. Together with
 * the thresholds below, the arenas of the three processes serving /sync
 * went from 27–92 MiB to 1–18 MiB, at no CPU cost we could measure (each
 * process is one of several on the machine: more threads per process bought
 * no parallelism there).
 *
 * MALLOC_MMAP_THRESHOLD_=131072, MALLOC_TRIM_THRESHOLD_=131072
 * (LAUNCH_MALLOC_ENV): glibc's own starting values, fixed. TurboFan
 * allocates each compile job's memory (its zones: segments of up to 32 KiB,
 * and some larger blocks) with malloc on V8's background threads and frees
 * it when the job ends. Left alone, glibc raises both thresholds each time
 * a mapped block is freed (up to 32 and 64 MiB); then large blocks too are
 * carved from the threads' arenas, and an arena's free top is no longer
 * returned: a process serving /sync held 20–40 MiB of freed compiler memory
 * in its arenas under load. Fixed, blocks of 128 KiB and more are unmapped
 * when freed and an arena's free top beyond 128 KiB is returned: about
 * half of it goes. What stays is the arenas' fragmentation by the 32 KiB
 * segments. (A 32 KiB threshold maps those too and empties the arenas, but
 * costs a map and an unmap per segment, ≈ 230 a second in a persister
 * taking 40 events a second, and measured 5–10 % more CPU per event.)
 * Figures: docs/benchmarks.md, "Memory of the worker stack".
 *
 * A malloc setting given in the environment (one of glibc's `MALLOC_…`
 * variables, e.g. MALLOC_ARENA_MAX, or `glibc.malloc.` in GLIBC_TUNABLES)
 * replaces these: the launcher then adds none. Likewise `--v8-pool-size`
 * in NODE_OPTIONS replaces LAUNCH_NODE_ARGS.
 */

/** Node options a launcher puts before bin/myelin.js (see the header). */
export const LAUNCH_NODE_ARGS: readonly string[] = ['--v8-pool-size=1'];

/** Node's options for a process a launcher starts: LAUNCH_NODE_ARGS, unless NODE_OPTIONS sets the pool size. */
export function launchNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const given = (env.NODE_OPTIONS ?? '').split(/\s+/).some((a) => /^--v8[-_]pool[-_]size(=|$)/.test(a));
  return given ? [] : [...LAUNCH_NODE_ARGS];
}

/** The malloc settings a launcher adds (see the header). */
export const LAUNCH_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** glibc's malloc variables (mallopt(3)); GLIBC_TUNABLES has the same as glibc.malloc.*. */
const MALLOC_VARIABLES = new Set([
  'MALLOC_ARENA_MAX',
  'MALLOC_ARENA_TEST',
  'MALLOC_CHECK_',
  'MALLOC_MMAP_MAX_',
  'MALLOC_MMAP_THRESHOLD_',
  'MALLOC_PERTURB_',
  'MALLOC_TOP_PAD_',
  'MALLOC_TRIM_THRESHOLD_',
]);

/** Whether the environment already chooses a malloc setting of its own. */
export function hasMallocSettings(env: NodeJS.ProcessEnv): boolean {
  return Object.keys(env).some((k) => MALLOC_VARIABLES.has(k)) || /(^|:)glibc\.malloc\./.test(env.GLIBC_TUNABLES ?? '');
}

/** The environment of a process a launcher starts: `env` with the malloc settings, unless it has its own. */
export function launchEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return hasMallocSettings(env) ? { ...env } : { ...env, ...LAUNCH_MALLOC_ENV };
}
