/**
 * End-to-end encryption: device identity keys, one-time and fallback keys,
 * cross-signing keys and signatures, the device_lists stream, and server-side
 * key backup. Written for both engines.
 */
import type { Migration } from './types.js';

export const e2eeMigrations: Migration[] = [
  {
    name: 'e2ee/001_keys',
    sql: `
      -- Identity keys of each device as uploaded (signed JSON, without unsigned).
      CREATE TABLE e2e_device_keys (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        key_json TEXT NOT NULL,
        ts_added_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, device_id)
      );

      -- Unclaimed one-time keys; a claim deletes the row. upload_seq orders
      -- keys by upload call (keys of one call share it).
      CREATE TABLE e2e_one_time_keys (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        key_id TEXT NOT NULL,
        key_json TEXT NOT NULL,
        upload_seq BIGINT NOT NULL,
        PRIMARY KEY (user_id, device_id, algorithm, key_id)
      );
      CREATE INDEX e2e_one_time_keys_order ON e2e_one_time_keys (user_id, device_id, algorithm, upload_seq);

      -- At most one fallback key per device and algorithm; used = handed out by a claim.
      CREATE TABLE e2e_fallback_keys (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        key_id TEXT NOT NULL,
        key_json TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, device_id, algorithm)
      );

      -- Current cross-signing keys: key_type is master, self_signing or user_signing.
      CREATE TABLE e2e_cross_signing_keys (
        user_id TEXT NOT NULL,
        key_type TEXT NOT NULL,
        public_key TEXT NOT NULL,
        key_json TEXT NOT NULL,
        ts_added_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, key_type)
      );

      -- Signatures uploaded with /keys/signatures/upload: signer (user, key id)
      -- over a target key (a device id, or a cross-signing public key).
      CREATE TABLE e2e_cross_signing_signatures (
        user_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        target_user_id TEXT NOT NULL,
        target_key_id TEXT NOT NULL,
        signature TEXT NOT NULL,
        PRIMARY KEY (target_user_id, target_key_id, user_id, key_id)
      );

      -- The device_lists stream: a row per user whose devices or
      -- cross-signing keys changed at that position.
      CREATE TABLE device_lists_stream (
        stream_id BIGINT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (stream_id, user_id)
      );
      CREATE INDEX device_lists_stream_user ON device_lists_stream (user_id, stream_id);

      -- Server-side key backup versions; deleted versions are kept, marked.
      CREATE TABLE e2e_room_keys_versions (
        user_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        algorithm TEXT NOT NULL,
        auth_data TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        etag BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, version)
      );

      CREATE TABLE e2e_room_keys (
        user_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        room_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        first_message_index BIGINT NOT NULL,
        forwarded_count BIGINT NOT NULL,
        is_verified INTEGER NOT NULL,
        session_data TEXT NOT NULL,
        PRIMARY KEY (user_id, version, room_id, session_id)
      );
    `,
  },
  {
    // Membership changes recorded on the device_lists stream, so that
    // /sync's device_lists range alone yields users who started or stopped
    // sharing a room.
    name: 'e2ee/002_device_lists_rooms',
    sql: `
      CREATE TABLE device_lists_room_changes (
        stream_id BIGINT NOT NULL,
        room_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        membership TEXT NOT NULL,
        PRIMARY KEY (stream_id, room_id, user_id)
      );
      CREATE INDEX device_lists_room_changes_room ON device_lists_room_changes (room_id, stream_id);
    `,
  },
];
