/**
 * Periodic background jobs (cleanups, expiries) run on ONE process:
 * `run_background_tasks_on` (default the main process). Capabilities start
 * theirs through this helper instead of setInterval, so that no service asks
 * which process it runs in:
 *
 *   runBackgroundTask(services, 'uia-expiry', 60_000, () => uia.expireSessions());
 *
 * Returns whether the job runs here. The timer stops at shutdown and never
 * keeps the process alive; a run never overlaps the previous one.
 */
import type { Logger } from 'pino';
import type { WorkerRuntime } from './runtime.js';

export interface BackgroundHost {
  workers?: WorkerRuntime;
  logger: Pick<Logger, 'warn'>;
  onShutdown: Array<() => Promise<void> | void>;
}

/** Whether this process runs background tasks (true without a worker runtime: a monolith). */
export function runsBackgroundTasks(s: { workers?: WorkerRuntime }): boolean {
  return s.workers?.role.runsBackgroundTasks ?? true;
}

export function runBackgroundTask(s: BackgroundHost, name: string, intervalMs: number, job: () => Promise<unknown> | unknown): boolean {
  if (!runsBackgroundTasks(s)) return false;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    Promise.resolve()
      .then(job)
      .catch((err) => s.logger.warn({ err }, `background task ${name} failed`))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref?.();
  s.onShutdown.push(() => clearInterval(timer));
  return true;
}
