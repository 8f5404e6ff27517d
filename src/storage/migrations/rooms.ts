/**
 * Rooms and events: the event graph, state groups, current state and
 * membership (DESIGN.md §3). Written for both engines.
 */
import type { Migration } from './types.js';

export const roomsMigrations: Migration[] = [
  {
    name: 'rooms/001_events',
    sql: `
      CREATE TABLE rooms (
        room_id TEXT PRIMARY KEY,
        room_version TEXT NOT NULL,
        creator TEXT,
        is_public INTEGER NOT NULL DEFAULT 0,
        created_ts BIGINT NOT NULL
      );

      -- Every event this server holds. stream_ordering is the events stream
      -- position (when we learned of it); topological_ordering is the depth.
      CREATE TABLE events (
        stream_ordering BIGINT PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        room_id TEXT NOT NULL,
        type TEXT NOT NULL,
        state_key TEXT,
        sender TEXT NOT NULL,
        depth BIGINT NOT NULL,
        topological_ordering BIGINT NOT NULL,
        origin_server_ts BIGINT NOT NULL,
        json TEXT NOT NULL,
        outlier INTEGER NOT NULL DEFAULT 0,
        rejected_reason TEXT,
        soft_failed INTEGER NOT NULL DEFAULT 0,
        redacted_by TEXT,
        contains_url INTEGER NOT NULL DEFAULT 0,
        relates_to_id TEXT,
        rel_type TEXT,
        instance_name TEXT NOT NULL DEFAULT 'master',
        received_ts BIGINT NOT NULL
      );
      CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
      CREATE INDEX events_room_topo ON events (room_id, topological_ordering, stream_ordering);
      CREATE INDEX events_relates ON events (relates_to_id, rel_type);

      CREATE TABLE event_edges (
        event_id TEXT NOT NULL,
        prev_event_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        PRIMARY KEY (event_id, prev_event_id)
      );
      CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

      CREATE TABLE event_auth (
        event_id TEXT NOT NULL,
        auth_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        PRIMARY KEY (event_id, auth_id)
      );

      CREATE TABLE event_forward_extremities (
        room_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (room_id, event_id)
      );

      -- State groups: a snapshot (prev_state_group NULL) or a delta on a
      -- previous group. state_groups_state holds the group's rows (all of
      -- them for a snapshot, the changed ones for a delta).
      CREATE TABLE state_groups (
        id BIGINT PRIMARY KEY,
        room_id TEXT NOT NULL,
        event_id TEXT,
        prev_state_group BIGINT,
        delta_depth INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE state_groups_state (
        state_group BIGINT NOT NULL,
        room_id TEXT NOT NULL,
        type TEXT NOT NULL,
        state_key TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (state_group, type, state_key)
      );
      -- State after each (non-outlier) event.
      CREATE TABLE event_to_state_groups (
        event_id TEXT PRIMARY KEY,
        state_group BIGINT NOT NULL
      );

      CREATE TABLE current_state_events (
        room_id TEXT NOT NULL,
        type TEXT NOT NULL,
        state_key TEXT NOT NULL,
        event_id TEXT NOT NULL,
        stream_ordering BIGINT NOT NULL,
        membership TEXT,
        PRIMARY KEY (room_id, type, state_key)
      );

      -- Every membership event, for "membership changes since a position".
      CREATE TABLE room_memberships (
        event_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        membership TEXT NOT NULL,
        stream_ordering BIGINT NOT NULL,
        display_name TEXT,
        avatar_url TEXT
      );
      CREATE INDEX room_memberships_user ON room_memberships (user_id, stream_ordering);
      CREATE INDEX room_memberships_room ON room_memberships (room_id, user_id);

      -- Current membership of every user (local and remote) in every room.
      CREATE TABLE current_membership (
        room_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        membership TEXT NOT NULL,
        event_id TEXT NOT NULL,
        stream_ordering BIGINT NOT NULL,
        PRIMARY KEY (room_id, user_id)
      );
      CREATE INDEX current_membership_user ON current_membership (user_id, membership);

      -- Client transaction ids: PUT /send/{type}/{txnId} is idempotent per device.
      CREATE TABLE event_txn_ids (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        txn_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        inserted_ts BIGINT NOT NULL,
        PRIMARY KEY (user_id, device_id, txn_id)
      );
    `,
  },
  {
    // Added by the rooms capability: serving-time metadata, aliases, forget.
    name: 'rooms/002_client_api',
    sql: `
      -- JSON with unsigned keys computed at persist time (replaces_state,
      -- prev_content, prev_sender) for serving state events to clients.
      ALTER TABLE events ADD COLUMN unsigned_extra TEXT;
      ALTER TABLE current_membership ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX event_txn_ids_event ON event_txn_ids (event_id);
      CREATE INDEX events_room_type ON events (room_id, type, stream_ordering);
      CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);
      CREATE INDEX state_groups_room ON state_groups (room_id);
      CREATE INDEX current_membership_room ON current_membership (room_id, membership);

      CREATE TABLE room_aliases (
        room_alias TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        creator TEXT NOT NULL,
        created_ts BIGINT NOT NULL
      );
      CREATE INDEX room_aliases_room ON room_aliases (room_id);
    `,
  },
  {
    // Nothing ever read event_edges or event_auth: an event's prev_events and
    // auth_events are in its JSON. Every event wrote four rows into them with
    // random keys (three B-trees), a fifth of the pages each commit wrote.
    name: 'rooms/003_drop_unread_edges',
    sql: `
      DROP TABLE event_edges;
      DROP TABLE event_auth;
    `,
  },
  {
    // Most events relate to nothing: their (NULL, NULL) entries were one
    // more B-tree insert per event and a page in every commit, for an index
    // only ever searched by relates_to_id = / IN (which imply NOT NULL, so
    // both engines use the partial index for them).
    name: 'rooms/004_partial_relates_index',
    sql: `
      DROP INDEX events_relates;
      CREATE INDEX events_relates ON events (relates_to_id, rel_type) WHERE relates_to_id IS NOT NULL;
    `,
  },
  {
    // Fewer B-tree pages written per event (each one a WAL frame on SQLite):
    // - the state group after an event and the sender's device and txn id
    //   become columns of its events row: event_to_state_groups and the
    //   event_txn_ids event-id index were inserted at a random key for every
    //   event; event_txn_ids stays, keyed by (user, device, txn), for
    //   idempotent sends only;
    // - events_room_type holds state events only (its readers all ask for a
    //   state key);
    // - SQLite: events keyed by stream_ordering (the rowid, so an insert
    //   appends and no separate stream_ordering index is kept), and
    //   event_txn_ids and event_forward_extremities stored in their primary
    //   key's B-tree (WITHOUT ROWID) instead of a rowid table plus an index.
    name: 'rooms/005_event_rows_carry_group_and_txn',
    sql: {
      sqlite: `
        CREATE TABLE events_new (
          stream_ordering INTEGER PRIMARY KEY,
          event_id TEXT NOT NULL UNIQUE,
          room_id TEXT NOT NULL,
          type TEXT NOT NULL,
          state_key TEXT,
          sender TEXT NOT NULL,
          depth BIGINT NOT NULL,
          topological_ordering BIGINT NOT NULL,
          origin_server_ts BIGINT NOT NULL,
          json TEXT NOT NULL,
          outlier INTEGER NOT NULL DEFAULT 0,
          rejected_reason TEXT,
          soft_failed INTEGER NOT NULL DEFAULT 0,
          redacted_by TEXT,
          contains_url INTEGER NOT NULL DEFAULT 0,
          relates_to_id TEXT,
          rel_type TEXT,
          instance_name TEXT NOT NULL DEFAULT 'master',
          received_ts BIGINT NOT NULL,
          unsigned_extra TEXT,
          state_group BIGINT,
          txn_device_id TEXT,
          txn_id TEXT
        );
        INSERT INTO events_new
          SELECT e.stream_ordering, e.event_id, e.room_id, e.type, e.state_key, e.sender, e.depth, e.topological_ordering,
            e.origin_server_ts, e.json, e.outlier, e.rejected_reason, e.soft_failed, e.redacted_by, e.contains_url,
            e.relates_to_id, e.rel_type, e.instance_name, e.received_ts, e.unsigned_extra,
            (SELECT g.state_group FROM event_to_state_groups g WHERE g.event_id = e.event_id),
            t.device_id, t.txn_id
          FROM events e
          LEFT JOIN event_txn_ids t ON t.rowid = (SELECT MIN(rowid) FROM event_txn_ids WHERE event_id = e.event_id AND user_id = e.sender)
          ORDER BY e.stream_ordering;
        DROP TABLE events;
        ALTER TABLE events_new RENAME TO events;
        CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
        CREATE INDEX events_room_topo ON events (room_id, topological_ordering, stream_ordering);
        CREATE INDEX events_relates ON events (relates_to_id, rel_type) WHERE relates_to_id IS NOT NULL;
        CREATE INDEX events_room_type ON events (room_id, type, state_key, stream_ordering) WHERE state_key IS NOT NULL;
        CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);
        DROP TABLE event_to_state_groups;

        CREATE TABLE event_txn_ids_new (
          user_id TEXT NOT NULL,
          device_id TEXT NOT NULL,
          txn_id TEXT NOT NULL,
          event_id TEXT NOT NULL,
          inserted_ts BIGINT NOT NULL,
          PRIMARY KEY (user_id, device_id, txn_id)
        ) WITHOUT ROWID;
        INSERT INTO event_txn_ids_new SELECT user_id, device_id, txn_id, event_id, inserted_ts FROM event_txn_ids;
        DROP TABLE event_txn_ids;
        ALTER TABLE event_txn_ids_new RENAME TO event_txn_ids;

        CREATE TABLE event_forward_extremities_new (
          room_id TEXT NOT NULL,
          event_id TEXT NOT NULL,
          PRIMARY KEY (room_id, event_id)
        ) WITHOUT ROWID;
        INSERT INTO event_forward_extremities_new SELECT room_id, event_id FROM event_forward_extremities;
        DROP TABLE event_forward_extremities;
        ALTER TABLE event_forward_extremities_new RENAME TO event_forward_extremities;
      `,
      postgres: `
        ALTER TABLE events ADD COLUMN state_group BIGINT, ADD COLUMN txn_device_id TEXT, ADD COLUMN txn_id TEXT;
        -- One rewrite of each row that has a group or a txn id (not one per column set).
        UPDATE events e SET state_group = x.state_group, txn_device_id = x.device_id, txn_id = x.txn_id
          FROM (
            SELECT e1.stream_ordering, g.state_group, t.device_id, t.txn_id
            FROM events e1
            LEFT JOIN event_to_state_groups g ON g.event_id = e1.event_id
            LEFT JOIN LATERAL (
              SELECT device_id, txn_id FROM event_txn_ids WHERE event_id = e1.event_id AND user_id = e1.sender LIMIT 1
            ) t ON true
          ) x
          WHERE x.stream_ordering = e.stream_ordering AND (x.state_group IS NOT NULL OR x.txn_id IS NOT NULL);
        DROP TABLE event_to_state_groups;
        DROP INDEX event_txn_ids_event;
        DROP INDEX events_room_type;
        CREATE INDEX events_room_type ON events (room_id, type, state_key, stream_ordering) WHERE state_key IS NOT NULL;
      `,
    },
  },
  {
    // Client transaction ids are scoped per endpoint path (spec: a request is
    // a retransmission when its txn id and its path are the same): the key
    // gains `scope`, the path without the txn id, as RoomService's txnScope
    // builds it: `send/{roomId}/{eventType}` or `redact/{roomId}/{eventId}`,
    // with `%` and `/` of the room id percent-encoded.
    //
    // The rows written before get the scope of the stored event: its room and
    // type, and for a redaction with a target (top-level `redacts`, or in the
    // content from v11) the redact path with that target; so a retry across
    // the upgrade still finds its event. What cannot be derived:
    // - an m.room.redaction sent with PUT /send/m.room.redaction/{txnId}
    //   that names a target in its content looks like a /redact one and gets
    //   that scope (a retry of that /send after the upgrade sends again);
    // - a redaction whose own JSON was pruned (it was redacted, pre-v11) has
    //   no target left and gets the send scope (its /redact retry sends again);
    // - a row whose event row is gone is dropped (nothing to return anyway);
    // - PostgreSQL reads the first "redacts" string of the event's JSON text,
    //   which may be one nested deeper in a content sent through /send: such
    //   a row gets a scope no request names (its retry sends again);
    // - PostgreSQL: a row whose key would exceed the new bound on the key
    //   (user, device, scope, txn id over 2,600 bytes, too long for the new
    //   index) is dropped; a retry of it answers 400 like any new one.
    name: 'rooms/006_txn_ids_scoped_by_path',
    sql: {
      sqlite: `
        CREATE TABLE event_txn_ids_new (
          user_id TEXT NOT NULL,
          device_id TEXT NOT NULL,
          scope TEXT NOT NULL,
          txn_id TEXT NOT NULL,
          event_id TEXT NOT NULL,
          inserted_ts BIGINT NOT NULL,
          PRIMARY KEY (user_id, device_id, scope, txn_id)
        ) WITHOUT ROWID;
        -- A redaction's target, else (and for every other event) the send path.
        INSERT INTO event_txn_ids_new
          SELECT t.user_id, t.device_id,
            COALESCE(
              CASE WHEN e.type = 'm.room.redaction' THEN
                'redact/' || replace(replace(e.room_id, '%', '%25'), '/', '%2F') || '/' || COALESCE(
                  CASE WHEN json_type(e.json, '$.redacts') = 'text' THEN json_extract(e.json, '$.redacts') END,
                  CASE WHEN json_type(e.json, '$.content.redacts') = 'text' THEN json_extract(e.json, '$.content.redacts') END)
              END,
              'send/' || replace(replace(e.room_id, '%', '%25'), '/', '%2F') || '/' || e.type),
            t.txn_id, t.event_id, t.inserted_ts
          FROM event_txn_ids t JOIN events e ON e.event_id = t.event_id;
        DROP TABLE event_txn_ids;
        ALTER TABLE event_txn_ids_new RENAME TO event_txn_ids;
      `,
      postgres: `
        ALTER TABLE event_txn_ids ADD COLUMN scope TEXT;
        -- The target is read from the JSON text, not parsed: the json type
        -- refuses to extract from a document holding \\u0000 or a lone
        -- surrogate anywhere (which a stored event may hold).
        UPDATE event_txn_ids t SET scope = CASE
            WHEN e.type = 'm.room.redaction' AND e.json ~ '"redacts":"[^"]+"'
              THEN 'redact/' || replace(replace(e.room_id, '%', '%25'), '/', '%2F') || '/' || substring(e.json from '"redacts":"([^"]+)"')
            ELSE 'send/' || replace(replace(e.room_id, '%', '%25'), '/', '%2F') || '/' || e.type
          END
          FROM events e WHERE e.event_id = t.event_id;
        DELETE FROM event_txn_ids
          WHERE scope IS NULL OR octet_length(user_id) + octet_length(device_id) + octet_length(scope) + octet_length(txn_id) > 2600;
        ALTER TABLE event_txn_ids
          ALTER COLUMN scope SET NOT NULL,
          DROP CONSTRAINT event_txn_ids_pkey,
          ADD PRIMARY KEY (user_id, device_id, scope, txn_id);
      `,
    },
  },
];
