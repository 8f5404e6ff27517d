/**
 * GET /_matrix/key/v2/server: this server's signing keys, signed by itself
 * (server-server API: "Publishing Keys"). Served under both the `federation`
 * and `keys` resources.
 */
import type { Services } from '../../app/services.js';
import { signJson } from '../../matrix/signing.js';
import type { Router } from '../types.js';

/** How long other servers may cache our keys. */
export const KEY_VALIDITY_MS = 24 * 3600_000;

export function serverKeyRoutes(r: Router, s: Services): void {
  const handler = () => {
    const verifyKeys: Record<string, { key: string }> = {};
    for (const k of s.keys.all) verifyKeys[k.keyId] = { key: k.publicKeyBase64 };
    const body = {
      server_name: s.serverName,
      verify_keys: verifyKeys,
      old_verify_keys: {},
      valid_until_ts: Date.now() + KEY_VALIDITY_MS,
    };
    let signed: Record<string, unknown> = body;
    for (const k of s.keys.all) signed = signJson(signed, s.serverName, k);
    return signed;
  };
  r.get('/_matrix/key/v2/server', handler);
  // Deprecated form with a key id; the answer is the same.
  r.get('/_matrix/key/v2/server/:keyId', handler);
}
