/**
 * GET /voip/turnServer (client-server API "Voice over IP"): TURN server
 * URIs and credentials from `turn_uris` with either
 *   - `turn_shared_secret`: time-limited credentials (the TURN REST API
 *     scheme coturn implements): username `<expiry unix seconds>:<user_id>`,
 *     password base64(HMAC-SHA1(secret, username)); or
 *   - static `turn_username` / `turn_password`.
 * `ttl` is `turn_user_lifetime` in seconds; guests are refused when
 * `turn_allow_guests` is false. Without turn_uris the answer is `{}`.
 */
import { createHmac } from 'node:crypto';
import { Errors } from '../../util/errors.js';

export interface TurnConfig {
  turn_uris: string[];
  turn_shared_secret?: string | undefined;
  turn_username?: string | undefined;
  turn_password?: string | undefined;
  /** Milliseconds. */
  turn_user_lifetime: number;
  turn_allow_guests: boolean;
}

export interface TurnServerResponse {
  uris?: string[];
  username?: string;
  password?: string;
  ttl?: number;
}

export function turnCredentials(cfg: TurnConfig, userId: string, isGuest: boolean, now = Date.now()): TurnServerResponse {
  if (isGuest && !cfg.turn_allow_guests) throw Errors.forbidden('Guest access to TURN servers is disabled');
  if (!cfg.turn_uris.length) return {};
  const ttl = Math.floor(cfg.turn_user_lifetime / 1000);
  if (cfg.turn_shared_secret) {
    const expiry = Math.floor(now / 1000) + ttl;
    const username = `${expiry}:${userId}`;
    const password = createHmac('sha1', cfg.turn_shared_secret).update(username).digest('base64');
    return { uris: cfg.turn_uris, username, password, ttl };
  }
  if (cfg.turn_username !== undefined && cfg.turn_password !== undefined) {
    return { uris: cfg.turn_uris, username: cfg.turn_username, password: cfg.turn_password, ttl };
  }
  // URIs without credentials are of no use to a client.
  return {};
}
