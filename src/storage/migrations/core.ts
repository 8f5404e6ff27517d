import type { Migration } from './types.js';

export const coreMigrations: Migration[] = [
  {
    name: 'core/001_server_keys',
    sql: `
      CREATE TABLE IF NOT EXISTS kv_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
];
