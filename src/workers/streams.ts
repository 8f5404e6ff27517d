/**
 * Names shared by worker mode: the streams that can be moved to a writer
 * (the keys of `stream_writers`) and the main process's instance names.
 */

/** Streams whose writer `stream_writers` can name. Only `events` may have several writers. */
export const WRITER_STREAMS = ['events', 'typing', 'to_device', 'account_data', 'receipts', 'presence', 'push_rules', 'device_lists'] as const;
export type WriterStream = (typeof WRITER_STREAMS)[number];

export const MULTI_WRITER_STREAMS: ReadonlySet<WriterStream> = new Set(['events']);

/** The main process's instance name (Synapse's), used in stream positions and `run_background_tasks_on`. */
export const MAIN_INSTANCE = 'master';
/** Its key in `instance_map` (the newer spelling). */
export const MAIN_INSTANCE_MAP_KEY = 'main';

/** `main` and `master` both mean the main process. */
export function normaliseInstance(name: string): string {
  return name === MAIN_INSTANCE_MAP_KEY ? MAIN_INSTANCE : name;
}

export function isMainInstance(name: string): boolean {
  return name === MAIN_INSTANCE || name === MAIN_INSTANCE_MAP_KEY;
}
