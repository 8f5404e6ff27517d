/**
 * A second SQLite connection on a worker thread that runs write-only
 * transactions (`Db.writeOnlyTransaction`): the event persister's group
 * commits. better-sqlite3 is synchronous, so on the main thread a commit's
 * fsync (synchronous=FULL) blocks the event loop for its whole duration; here
 * the main thread builds, signs and checks the next events — and serves
 * requests — while the previous group is written and synced. A transaction's
 * promise resolves only after its COMMIT returned on the writer thread, so an
 * acknowledged event is as durable as with the in-thread connection.
 *
 * The worker is started on first use and kept referenced only while a
 * transaction is in flight (an idle writer does not keep the process alive).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** [sql, params] as the writer runs them (params already SQLite values). */
export type WriterStatement = [string, unknown[]];

interface Job {
  resolve: () => void;
  reject: (e: unknown) => void;
}

// CommonJS, evaluated in the worker (no separate file: works from dist/ and from the TypeScript sources alike).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('synchronous = ' + workerData.synchronous);
db.pragma('foreign_keys = OFF');
db.pragma('busy_timeout = 5000');
db.pragma('cache_size = -32000');
// Statement journals (multi-row INSERTs may need to undo part of themselves) in memory:
// with the default they go to a temporary file, created, written and deleted every commit.
db.pragma('temp_store = MEMORY');
db.pragma('wal_autocheckpoint = ' + workerData.autocheckpoint);
const stmts = new Map();
parentPort.on('message', (m) => {
  if (m.close) {
    db.close();
    parentPort.postMessage({ id: m.id });
    return;
  }
  try {
    db.exec('BEGIN IMMEDIATE');
    for (const [sql, params] of m.stmts) {
      let s = stmts.get(sql);
      if (!s) {
        s = db.prepare(sql);
        stmts.set(sql, s);
      }
      if (s.reader) s.all(...params);
      else s.run(...params);
    }
    db.exec('COMMIT');
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
    } catch {}
    parentPort.postMessage({ id: m.id, error: { message: String(e && e.message), code: e && e.code } });
  }
});
`;

export class SqliteWriter {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;

  constructor(
    private readonly path: string,
    private readonly synchronous: string,
    private readonly autocheckpoint: number,
  ) {}

  /** Runs the statements in one transaction on the writer thread; resolves once committed. */
  run(stmts: WriterStatement[]): Promise<void> {
    return this.send({ stmts });
  }

  /** Closes the writer's connection (after the transactions already sent) and ends the thread. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    try {
      await this.send({ close: true });
    } finally {
      this.worker = undefined;
      await w.terminate();
    }
  }

  private send(msg: { stmts?: WriterStatement[]; close?: boolean }): Promise<void> {
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      if (this.jobs.size === 1) w.ref();
      w.postMessage({ id, ...msg });
    });
  }

  private start(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path: this.path, synchronous: this.synchronous, autocheckpoint: this.autocheckpoint } });
    w.unref();
    w.on('message', (m: { id: number; error?: { message: string; code?: string } }) => {
      const job = this.jobs.get(m.id);
      if (!job) return;
      this.jobs.delete(m.id);
      if (this.jobs.size === 0) w.unref();
      if (m.error) job.reject(Object.assign(new Error(m.error.message), m.error.code ? { code: m.error.code } : {}));
      else job.resolve();
    });
    const fail = (e: unknown) => {
      if (this.worker === w) this.worker = undefined;
      const err = e instanceof Error ? e : new Error(`SQLite writer thread exited (${String(e)})`);
      for (const job of this.jobs.values()) job.reject(err);
      this.jobs.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(code));
    this.worker = w;
    return w;
  }
}
