/**
 * Every migration, in the order they are applied. Each capability keeps its
 * own list in its own file; append new capabilities at the end.
 */
import { coreMigrations } from './core.js';
import { roomsMigrations } from './rooms.js';
import type { Migration } from './types.js';
import { workersMigrations } from './workers.js';
import { accountsMigrations } from './accounts.js';
import { liveMigrations } from './live.js';
import { e2eeMigrations } from './e2ee.js';
import { roomsExtraMigrations } from './rooms-extra.js';

export const allMigrations: Migration[] = [
  ...coreMigrations,
  ...roomsMigrations,
  ...liveMigrations,
  ...accountsMigrations,
  ...e2eeMigrations,
  ...workersMigrations,
  ...roomsExtraMigrations,
];
