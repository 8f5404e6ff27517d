/**
 * Every migration, in the order they are applied. Each capability keeps its
 * own list in its own file; append new capabilities at the end.
 */
import { coreMigrations } from './core.js';
import { roomsMigrations } from './rooms.js';
import type { Migration } from './types.js';

export const allMigrations: Migration[] = [
  ...coreMigrations,
  ...roomsMigrations,
];
