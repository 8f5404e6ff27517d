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

/** PostgreSQL type of a column that `insertMany` writes: the element type of its array parameter. */
export type ColumnType = 'bigint' | 'int' | 'text';

/**
 * `SELECT * FROM unnest(?::bigint[], ?::text[], ...)`: rows from one array
 * parameter per column (PostgreSQL). It reads no table, so a write-only
 * transaction may still merge a statement that uses it (postgres.ts `mergeWrites`).
 */
export function unnestRows(types: readonly ColumnType[]): string {
  return `SELECT * FROM unnest(${types.map((t) => `?::${t}[]`).join(', ')})`;
}

/** Row counts up to which SQLite's `VALUES` texts are kept (the sizes group commits produce). */
const CACHED_VALUES_ROWS = 64;
/** SQLite: `head VALUES (?, ...), ... tail` texts by head + tail, then by row count. */
const valuesTexts = new Map<string, string[]>();
/** PostgreSQL: `head SELECT * FROM unnest(...) tail` texts by head, tail and types. */
const unnestTexts = new Map<string, string>();

function valuesInsertSql(head: string, tail: string, cols: number, rows: number): string {
  const build = () => `${head} VALUES ${new Array<string>(rows).fill(`(${placeholders(cols)})`).join(', ')}${tail ? ' ' + tail : ''}`;
  if (rows > CACHED_VALUES_ROWS) return build();
  const key = tail ? head + tail : head;
  let bySize = valuesTexts.get(key);
  if (!bySize) valuesTexts.set(key, (bySize = []));
  return (bySize[rows] ??= build());
}

function unnestInsertSql(head: string, tail: string, types: readonly ColumnType[]): string {
  const key = `${head}\u0000${tail}\u0000${types.join()}`;
  let text = unnestTexts.get(key);
  if (text === undefined) {
    text = `${head} ${unnestRows(types)}${tail ? ' ' + tail : ''}`;
    if (unnestTexts.size < 1000) unnestTexts.set(key, text);
  }
  return text;
}

/** Rows per PostgreSQL INSERT at most (its parameters are arrays: no bound on their number). */
const UNNEST_ROWS_PER_INSERT = 1000;

/**
 * Multi-row INSERT of rows given as one flat array of column values (one
 * per entry of `types`, row after row). `head` is `INSERT INTO t (cols)`,
 * `tail` an optional `ON CONFLICT ...`.
 * - SQLite: `head VALUES (?, ...), ... tail`, about 2,000 parameters per
 *   statement at most (its writer thread caches prepared statements by text).
 * - PostgreSQL: `head SELECT * FROM unnest(?::t1[], ?::t2[], ...) tail`, one
 *   array per column typed as the column: the text does not depend on the
 *   number of rows, so it is parsed once per connection (a named prepared
 *   statement), and so is a group commit that merges it with others.
 */
export async function insertMany(q: Queryable, head: string, types: readonly ColumnType[], values: readonly unknown[], tail = ''): Promise<void> {
  const cols = types.length;
  const rows = values.length / cols;
  const pg = q.engine === 'postgres';
  const per = pg ? UNNEST_ROWS_PER_INSERT : Math.max(1, Math.floor(2000 / cols));
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    const part = n === rows ? values : values.slice(r * cols, (r + n) * cols);
    if (!pg) {
      await q.execute(valuesInsertSql(head, tail, cols, n), part);
      continue;
    }
    const arrays: unknown[][] = [];
    for (let c = 0; c < cols; c++) {
      const column = new Array<unknown>(n);
      for (let i = 0; i < n; i++) column[i] = part[i * cols + c];
      arrays.push(column);
    }
    await q.execute(unnestInsertSql(head, tail, types), arrays);
  }
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
