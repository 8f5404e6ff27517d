/**
 * Username rules for registration (client-server API: user identifiers).
 * Localparts use the current grammar `[a-z0-9._=\-/+]`; purely numeric ones
 * are reserved for guests (which get numeric ids) and a leading `_` for
 * application services; the whole user id is at most 255 bytes.
 */
import { isValidUserLocalpart, MAX_ID_BYTES } from '../../matrix/identifiers.js';
import { Errors } from '../../util/errors.js';

export function validateLocalpart(localpart: string, serverName: string, opts: { allowNumeric?: boolean } = {}): void {
  if (localpart.length === 0) throw Errors.invalidUsername('User ID cannot be empty');
  if (!isValidUserLocalpart(localpart)) {
    throw Errors.invalidUsername("User ID can only contain characters a-z, 0-9, or '=_-./+'");
  }
  if (localpart.startsWith('_')) throw Errors.invalidUsername('User ID may not begin with _');
  if (!opts.allowNumeric && /^\d+$/.test(localpart)) throw Errors.invalidUsername('Numeric user IDs are reserved for guest users.');
  if (Buffer.byteLength(`@${localpart}:${serverName}`, 'utf8') > MAX_ID_BYTES) {
    throw Errors.invalidUsername(`User ID may not be longer than ${MAX_ID_BYTES} characters`);
  }
}
