import type { Migration } from './types.js';

/**
 * Worker mode: per-writer positions of multi-writer streams (the events
 * stream with several event persisters). `stream_id` is the position below
 * which every write of that instance has finished.
 */
export const workersMigrations: Migration[] = [
  {
    name: 'workers/001_stream_positions',
    sql: `
      CREATE TABLE IF NOT EXISTS stream_positions (
        stream_name TEXT NOT NULL,
        instance_name TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        PRIMARY KEY (stream_name, instance_name)
      );
    `,
  },
];
