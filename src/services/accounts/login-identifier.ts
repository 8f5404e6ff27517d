/**
 * The user a password login (POST /login or a UIA m.login.password stage)
 * names: `identifier: {type: "m.id.user", user}` or the legacy top-level
 * `user` field; either a localpart or a full user id.
 */
import { Errors, MatrixError } from '../../util/errors.js';

export function userFromLoginBody(body: Record<string, any>): string {
  const identifier = body.identifier;
  if (identifier !== undefined && identifier !== null) {
    if (typeof identifier !== 'object' || Array.isArray(identifier)) throw Errors.badJson("'identifier' must be an object");
    const type = identifier.type;
    if (type === undefined) throw Errors.missingParam('identifier.type');
    if (typeof type !== 'string') throw Errors.badJson("'identifier.type' must be a string");
    if (type === 'm.id.user') {
      const user = identifier.user;
      if (user === undefined || user === null) throw Errors.missingParam('identifier.user');
      if (typeof user !== 'string') throw Errors.badJson("'identifier.user' must be a string");
      return user;
    }
    if (type === 'm.id.thirdparty' || type === 'm.id.phone') {
      throw new MatrixError(400, 'M_UNKNOWN', 'Login with third-party identifiers is not supported');
    }
    throw new MatrixError(400, 'M_UNKNOWN', `Unknown login identifier type: ${type}`);
  }
  const user = body.user;
  if (user !== undefined && user !== null) {
    if (typeof user !== 'string') throw Errors.badJson("'user' must be a string");
    return user;
  }
  if (body.medium !== undefined || body.address !== undefined) {
    throw new MatrixError(400, 'M_UNKNOWN', 'Login with third-party identifiers is not supported');
  }
  throw Errors.missingParam('identifier');
}

export function passwordFromBody(body: Record<string, any>): string {
  const p = body.password;
  if (p === undefined || p === null) throw Errors.missingParam('password');
  if (typeof p !== 'string') throw Errors.badJson("'password' must be a string");
  return p;
}
