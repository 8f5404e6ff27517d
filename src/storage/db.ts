/**
 * The one database interface both engines implement.
 *
 * SQL is written once, in the subset both SQLite and PostgreSQL accept, with
 * `?` placeholders (the PostgreSQL engine rewrites them to `$n`). Conventions:
 * TEXT for strings and JSON, BIGINT for ids/timestamps/positions, INTEGER 0/1
 * for booleans, `INSERT ... ON CONFLICT ... DO UPDATE/NOTHING` for upserts,
 * `RETURNING` where useful. Where a statement must differ, branch on `engine`.
 */
export type Engine = 'sqlite' | 'postgres';

export type Row = Record<string, any>;

export interface Queryable {
  readonly engine: Engine;
  /** Runs a statement and returns its rows (empty for statements without). */
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** First row or undefined. */
  queryOne<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a statement; returns the number of rows changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface Db extends Queryable {
  /**
   * Runs `fn` in a transaction: committed when it resolves, rolled back when it
   * throws. Only use the `tx` handle inside. Nested calls on `tx` join the
   * outer transaction.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Optional: a transaction made of writes only (`execute`; reads throw), whose
   * statements need no results. SQLite runs it on a writer thread, so that the
   * commit (an fsync with synchronous=FULL) does not block the event loop;
   * resolves once committed. Use `writeTransaction(db, fn)` below.
   */
  writeOnlyTransaction?(fn: (tx: Queryable) => Promise<void>): Promise<void>;
  /**
   * Optional: write transactions may run concurrently (a connection pool on
   * a server database); absent on an engine with a single writer (SQLite),
   * where a second transaction would only wait for the first.
   */
  readonly concurrentWrites?: boolean;
  /** Runs a multi-statement script (migrations). */
  exec(script: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Marks a statement of a write-only transaction that touches rows no other
 * statement of the transaction on the same table touches (the PostgreSQL
 * engine may then run them as one statement: postgres.ts `mergeWrites`).
 */
export const DISJOINT_ROWS = '/* disjoint rows */';

/** A write-only transaction: off the event loop where the engine can (SQLite), else a plain transaction. */
export function writeTransaction(db: Db, fn: (tx: Queryable) => Promise<void>): Promise<void> {
  return db.writeOnlyTransaction ? db.writeOnlyTransaction(fn) : db.transaction(fn);
}

/** `IN (?, ?, ?)` placeholder list for n values (n >= 1). */
export function placeholders(n: number): string {
  return n <= 0 ? 'NULL' : new Array(n).fill('?').join(', ');
}

/** `xs` in consecutive slices of at most `n` (for bounded IN lists and multi-row INSERTs). */
export function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
