import type { DatabaseConfig } from '../config/schema.js';
import type { Db } from './db.js';
import { PostgresDb } from './postgres.js';
import { SqliteDb } from './sqlite.js';

export function openDatabase(cfg: DatabaseConfig, applicationName = 'myelin'): Db {
  if (cfg.name === 'sqlite3') return new SqliteDb(cfg.args.database);
  const a = cfg.args;
  return new PostgresDb({
    host: a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: a.database ?? a.dbname,
    min: a.cp_min,
    max: a.cp_max,
    applicationName,
  });
}
