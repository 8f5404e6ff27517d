/**
 * rooms-extra: server-side search index, event reports, user reports.
 *
 * event_search is filled lazily from `events` in stream order by the search
 * service (services/search): `event_search_position` records how far the
 * index has read (with several event persisters, each one's own position
 * ahead of the minimum in `writers`, so that a slow persister holds back
 * the indexing of its own rooms only). SQLite uses an FTS5 table; PostgreSQL a tsvector column
 * with a GIN index.
 */
import type { Migration } from './types.js';

export const roomsExtraMigrations: Migration[] = [
  {
    name: 'rooms-extra/001_search_reports',
    sql: {
      sqlite: `
        CREATE VIRTUAL TABLE event_search USING fts5(
          event_id UNINDEXED, room_id UNINDEXED, sender UNINDEXED, key UNINDEXED,
          stream_ordering UNINDEXED, origin_server_ts UNINDEXED, value,
          tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TABLE event_search_position (
          id INTEGER PRIMARY KEY,
          stream_ordering BIGINT NOT NULL
        );
        INSERT INTO event_search_position (id, stream_ordering) VALUES (1, 0);

        CREATE TABLE event_reports (
          id BIGINT PRIMARY KEY,
          received_ts BIGINT NOT NULL,
          room_id TEXT NOT NULL,
          event_id TEXT,
          user_id TEXT NOT NULL,
          reason TEXT,
          score INTEGER,
          content TEXT NOT NULL
        );
        CREATE INDEX event_reports_room ON event_reports (room_id);
      `,
      postgres: `
        CREATE TABLE event_search (
          event_id TEXT NOT NULL,
          room_id TEXT NOT NULL,
          sender TEXT NOT NULL,
          key TEXT NOT NULL,
          stream_ordering BIGINT NOT NULL,
          origin_server_ts BIGINT NOT NULL,
          value TEXT NOT NULL,
          vector TSVECTOR NOT NULL,
          PRIMARY KEY (event_id, key)
        );
        CREATE INDEX event_search_fts ON event_search USING GIN (vector);
        CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
        CREATE TABLE event_search_position (
          id INTEGER PRIMARY KEY,
          stream_ordering BIGINT NOT NULL
        );
        INSERT INTO event_search_position (id, stream_ordering) VALUES (1, 0);

        CREATE TABLE event_reports (
          id BIGINT PRIMARY KEY,
          received_ts BIGINT NOT NULL,
          room_id TEXT NOT NULL,
          event_id TEXT,
          user_id TEXT NOT NULL,
          reason TEXT,
          score INTEGER,
          content TEXT NOT NULL
        );
        CREATE INDEX event_reports_room ON event_reports (room_id);
      `,
    },
  },
  {
    // POST /users/{userId}/report (Matrix 1.14): reports of users, apart
    // from event/room reports because they name no room.
    name: 'rooms-extra/002_user_reports',
    sql: `
      CREATE TABLE user_reports (
        id BIGINT PRIMARY KEY,
        received_ts BIGINT NOT NULL,
        target_user_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        reason TEXT NOT NULL
      );
      CREATE INDEX user_reports_target ON user_reports (target_user_id);
    `,
  },
  {
    // Several event persisters: the index position per writer (JSON object
    // of the writers ahead of stream_ordering, '' when none), moved with the
    // minimum by one compare-and-set.
    name: 'rooms-extra/003_search_writer_positions',
    sql: `ALTER TABLE event_search_position ADD COLUMN writers TEXT NOT NULL DEFAULT ''`,
  },
];
