import { createHmac } from 'node:crypto';

/**
 * The `mac` of Synapse's shared-secret registration API
 * (POST /_synapse/admin/v1/register): HMAC-SHA1, keyed by the
 * registration shared secret, over
 *   nonce NUL username NUL password NUL ("admin" | "notadmin")
 * written as lowercase hex.
 */
export function registrationMac(
  sharedSecret: string,
  nonce: string,
  username: string,
  password: string,
  admin: boolean,
): string {
  const h = createHmac('sha1', Buffer.from(sharedSecret, 'utf8'));
  h.update(Buffer.from(nonce, 'utf8'));
  h.update(Buffer.from([0]));
  h.update(Buffer.from(username, 'utf8'));
  h.update(Buffer.from([0]));
  h.update(Buffer.from(password, 'utf8'));
  h.update(Buffer.from([0]));
  h.update(admin ? 'admin' : 'notadmin');
  return h.digest('hex');
}
