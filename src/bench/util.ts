/** Small async helpers shared by the scenarios, and the entry-point runner. */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run `fn` over `items` with at most `concurrency` in flight; results keep input order. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}

/** Wait until `cond()` holds or `timeoutMs` passes; true if it held. */
export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() >= end) return false;
    await sleep(stepMs);
  }
  return true;
}

export const now = () => performance.now();

/**
 * Runs a bench entry point's `main` when its module is the one node was
 * started with (`node dist/bench/x.js`), not when it is imported; exits with
 * main's status (1 and the stack when it throws).
 */
export function runIfMain(moduleUrl: string, main: (argv: readonly string[]) => Promise<number>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(realpathSync(process.argv[1])).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      process.exit(1);
    },
  );
}
