/**
 * Live streams: receipts, account data (and tags), to-device messages,
 * presence, push rules and per-event push actions (unread counts).
 * Written for both engines. Every stream row carries its stream position
 * (`stream_id`); rows that are updated in place keep the stream's maximum, so
 * the StreamIdGenerator can restart from MAX(stream_id).
 */
import type { Migration } from './types.js';

export const liveMigrations: Migration[] = [
  {
    name: 'live/001_streams',
    sql: `
      -- Latest receipt per (room, type, user, thread); thread_id '' = unthreaded.
      CREATE TABLE receipts (
        room_id TEXT NOT NULL,
        receipt_type TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL DEFAULT '',
        event_id TEXT NOT NULL,
        -- stream_ordering of the receipted event (for unread counts)
        event_stream_ordering BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        stream_id BIGINT NOT NULL,
        PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
      );
      CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);
      CREATE INDEX receipts_user_room ON receipts (user_id, room_id);

      -- Global (room_id '') and per-room account data. For type m.tag the
      -- content is built from room_tags when read.
      CREATE TABLE account_data (
        user_id TEXT NOT NULL,
        room_id TEXT NOT NULL DEFAULT '',
        type TEXT NOT NULL,
        content TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        PRIMARY KEY (user_id, room_id, type)
      );
      CREATE INDEX account_data_user_stream ON account_data (user_id, stream_id);

      CREATE TABLE room_tags (
        user_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (user_id, room_id, tag)
      );

      -- To-device messages waiting for delivery (deleted once acknowledged).
      CREATE TABLE device_inbox (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        message_json TEXT NOT NULL,
        PRIMARY KEY (user_id, device_id, stream_id)
      );
      CREATE INDEX device_inbox_stream ON device_inbox (stream_id);
      CREATE TABLE to_device_txns (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        txn_id TEXT NOT NULL,
        stream_id BIGINT NOT NULL,
        inserted_ts BIGINT NOT NULL,
        PRIMARY KEY (user_id, device_id, txn_id)
      );
      -- Highest position of streams whose rows get deleted (to_device), so a
      -- restart never hands out a position a client has already seen.
      CREATE TABLE live_stream_heads (
        stream TEXT PRIMARY KEY,
        position BIGINT NOT NULL
      );

      CREATE TABLE presence (
        user_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        status_msg TEXT,
        last_active_ts BIGINT NOT NULL,
        currently_active INTEGER NOT NULL DEFAULT 0,
        stream_id BIGINT NOT NULL
      );
      CREATE INDEX presence_stream ON presence (stream_id);

      -- User-defined push rules; priority: higher = more important.
      CREATE TABLE push_rules (
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        priority BIGINT NOT NULL,
        conditions TEXT,
        pattern TEXT,
        actions TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (user_id, kind, rule_id)
      );
      -- The user's changes to server-default rules (NULL = unchanged).
      CREATE TABLE push_rules_defaults (
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        enabled INTEGER,
        actions TEXT,
        PRIMARY KEY (user_id, kind, rule_id)
      );
      CREATE TABLE push_rules_stream (
        user_id TEXT PRIMARY KEY,
        stream_id BIGINT NOT NULL
      );

      -- Notifying push actions per local user and event (unread counts, /notifications).
      CREATE TABLE event_push_actions (
        user_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        stream_ordering BIGINT NOT NULL,
        thread_id TEXT NOT NULL,
        notif INTEGER NOT NULL,
        highlight INTEGER NOT NULL,
        actions TEXT NOT NULL,
        received_ts BIGINT NOT NULL,
        PRIMARY KEY (user_id, event_id)
      );
      CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);
      CREATE INDEX event_push_actions_user ON event_push_actions (user_id, stream_ordering);
    `,
  },
  {
    // Push outcomes as one row per notifying event (its default outcome)
    // plus rows only for members whose outcome differs, instead of one row
    // per recipient. The old per-recipient rows become exception rows, so
    // they keep counting exactly as before.
    name: 'live/002_push_defaults_exceptions',
    sql: {
      sqlite: `
        CREATE TABLE event_push_defaults (
          room_id TEXT NOT NULL,
          stream_ordering BIGINT NOT NULL,
          event_id TEXT NOT NULL,
          sender TEXT NOT NULL,
          thread_id TEXT NOT NULL,
          highlight INTEGER NOT NULL,
          actions TEXT NOT NULL,
          received_ts BIGINT NOT NULL,
          PRIMARY KEY (room_id, stream_ordering)
        ) WITHOUT ROWID;
        CREATE TABLE event_push_exceptions (
          user_id TEXT NOT NULL,
          room_id TEXT NOT NULL,
          stream_ordering BIGINT NOT NULL,
          event_id TEXT NOT NULL,
          thread_id TEXT NOT NULL,
          notif INTEGER NOT NULL,
          highlight INTEGER NOT NULL,
          actions TEXT NOT NULL,
          received_ts BIGINT NOT NULL,
          PRIMARY KEY (user_id, room_id, stream_ordering)
        ) WITHOUT ROWID;
        CREATE INDEX event_push_exceptions_user ON event_push_exceptions (user_id, stream_ordering);
        INSERT OR IGNORE INTO event_push_exceptions (user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight, actions, received_ts)
          SELECT user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight, actions, received_ts FROM event_push_actions;
        DROP TABLE event_push_actions;
      `,
      postgres: `
        CREATE TABLE event_push_defaults (
          room_id TEXT NOT NULL,
          stream_ordering BIGINT NOT NULL,
          event_id TEXT NOT NULL,
          sender TEXT NOT NULL,
          thread_id TEXT NOT NULL,
          highlight INTEGER NOT NULL,
          actions TEXT NOT NULL,
          received_ts BIGINT NOT NULL,
          PRIMARY KEY (room_id, stream_ordering)
        );
        CREATE TABLE event_push_exceptions (
          user_id TEXT NOT NULL,
          room_id TEXT NOT NULL,
          stream_ordering BIGINT NOT NULL,
          event_id TEXT NOT NULL,
          thread_id TEXT NOT NULL,
          notif INTEGER NOT NULL,
          highlight INTEGER NOT NULL,
          actions TEXT NOT NULL,
          received_ts BIGINT NOT NULL,
          PRIMARY KEY (user_id, room_id, stream_ordering)
        );
        CREATE INDEX event_push_exceptions_user ON event_push_exceptions (user_id, stream_ordering);
        INSERT INTO event_push_exceptions (user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight, actions, received_ts)
          SELECT user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight, actions, received_ts FROM event_push_actions
          ON CONFLICT DO NOTHING;
        DROP TABLE event_push_actions;
      `,
    },
  },
  {
    // Unread counts on /sync advance cached counts by the push rows of a
    // room's new events, read once for every member woken by them: that
    // needs the exceptions of a room by position (the primary key starts
    // with the user).
    name: 'live/003_push_exceptions_by_room',
    sql: `CREATE INDEX event_push_exceptions_room ON event_push_exceptions (room_id, stream_ordering);`,
  },
  {
    // To-device transaction ids are scoped by endpoint path (spec: a
    // retransmission has the same txn id and the same path), whose only other
    // part is the event type: PUT /sendToDevice/{eventType}/{txnId}. The same
    // txn id with another type was taken for a retry and its messages dropped.
    // Rows written before get the type of their messages where an
    // undelivered one is still in device_inbox; the others (delivered and
    // acknowledged, or with no local recipient) get '' and match no request:
    // a retry of those across the upgrade is delivered again.
    name: 'live/004_to_device_txns_scoped_by_type',
    sql: {
      sqlite: `
        CREATE TABLE to_device_txns_new (
          user_id TEXT NOT NULL,
          device_id TEXT NOT NULL,
          event_type TEXT NOT NULL,
          txn_id TEXT NOT NULL,
          stream_id BIGINT NOT NULL,
          inserted_ts BIGINT NOT NULL,
          PRIMARY KEY (user_id, device_id, event_type, txn_id)
        );
        INSERT INTO to_device_txns_new
          SELECT t.user_id, t.device_id,
            COALESCE((SELECT json_extract(i.message_json, '$.type') FROM device_inbox i WHERE i.stream_id = t.stream_id LIMIT 1), ''),
            t.txn_id, t.stream_id, t.inserted_ts
          FROM to_device_txns t;
        DROP TABLE to_device_txns;
        ALTER TABLE to_device_txns_new RENAME TO to_device_txns;
      `,
      // The type is read from the JSON text, not parsed: the json type refuses
      // to extract from a message holding \u0000 or a lone surrogate anywhere.
      // A type written with escapes is not read (the row gets ''). One probe
      // of device_inbox_stream per claimed txn id, not a pass over the inbox.
      // Rows whose txn id is longer than a request may now give (1,024
      // bytes), or whose key would not fit a primary-key entry with the type
      // added (the bound of the room txn ids), can match no request: dropped,
      // or the key swap below would fail on them at every start.
      postgres: `
        ALTER TABLE to_device_txns ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
        DELETE FROM to_device_txns
          WHERE octet_length(txn_id) > 1024 OR octet_length(user_id) + octet_length(device_id) + octet_length(txn_id) > 2600 - 255;
        UPDATE to_device_txns t SET event_type = COALESCE(
          (SELECT substring(i.message_json from '^\\{"type":"([^"\\\\]*)"') FROM device_inbox i WHERE i.stream_id = t.stream_id LIMIT 1), '');
        ALTER TABLE to_device_txns ALTER COLUMN event_type DROP DEFAULT,
          DROP CONSTRAINT to_device_txns_pkey,
          ADD PRIMARY KEY (user_id, device_id, event_type, txn_id);
      `,
    },
  },
];
