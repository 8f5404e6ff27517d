/**
 * Tear-down that also runs on Ctrl-C: the shapes script registers how to
 * undo what it started (server processes, nginx, a PostgreSQL database, a
 * temporary directory). On SIGINT / SIGTERM every registered cleanup runs
 * (newest first) before the process exits, so an interrupted benchmark leaves
 * no processes or databases behind. Each cleanup also stays callable
 * normally; it runs at most once.
 */

type Cleanup = () => Promise<void>;

const active = new Set<Cleanup>();
let installed = false;
let interrupted = false;
let finished: () => void = () => {};
/** Resolves once the cleanups of an interruption have all run (the process exits right after). */
const cleanedUp = new Promise<void>((r) => (finished = r));

/** Whether SIGINT/SIGTERM arrived: callers should start nothing new and wait for cleanedUp(). */
export function wasInterrupted(): boolean {
  return interrupted;
}

export function cleanedUpAfterInterrupt(): Promise<void> {
  return cleanedUp;
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return; // a second Ctrl-C while cleaning up: keep cleaning
      interrupted = true;
      console.error(`\nbench: ${sig}, cleaning up…`);
      void runAll().finally(() => {
        finished();
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
    });
  }
}

async function runAll(): Promise<void> {
  for (const c of [...active].reverse()) await c().catch(() => {});
}

/**
 * Registers `fn` to run on SIGINT/SIGTERM; returns a function that runs it
 * now (once) and unregisters it.
 */
export function onInterrupt(fn: Cleanup): Cleanup {
  install();
  let done: Promise<void> | undefined;
  const once: Cleanup = () => {
    done ??= fn();
    return done;
  };
  active.add(once);
  return async () => {
    try {
      await once();
    } finally {
      active.delete(once);
    }
  };
}
