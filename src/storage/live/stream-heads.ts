/** Stream position bookkeeping for the live streams. */
import type { Queryable } from '../db.js';
import { StreamIdGenerator } from '../../streams/id-generator.js';

/**
 * A generator that starts after the highest position in the given columns
 * and in `live_stream_heads` for this stream (streams whose rows are deleted).
 */
export async function liveGenerator(db: Queryable, stream: string, sources: Array<{ table: string; column: string }>): Promise<StreamIdGenerator> {
  const gen = await StreamIdGenerator.fromTables(db, sources);
  const head = await db.queryOne<{ position: number | string }>('SELECT position FROM live_stream_heads WHERE stream = ?', [stream]);
  const start = Math.max(gen.getCurrent(), head ? Number(head.position) : 0);
  return new StreamIdGenerator(start);
}

/** Records that positions up to `position` have existed (before deleting rows). */
export async function raiseStreamHead(db: Queryable, stream: string, position: number): Promise<void> {
  await db.execute(
    `INSERT INTO live_stream_heads (stream, position) VALUES (?, ?)
     ON CONFLICT (stream) DO UPDATE SET position = excluded.position WHERE live_stream_heads.position < excluded.position`,
    [stream, position],
  );
}
