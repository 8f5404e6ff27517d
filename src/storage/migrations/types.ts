/**
 * A schema migration. Names are unique and ordered within their capability
 * (e.g. `accounts/001_users`); the runner applies the list from
 * migrations/index.ts in order and records each applied name.
 * `sql` is either one script for both engines or one per engine.
 */
export interface Migration {
  name: string;
  sql: string | { sqlite: string; postgres: string };
}
