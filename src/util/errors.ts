/**
 * Matrix errors: thrown anywhere below the HTTP layer, turned into
 * `{errcode, error, ...}` bodies with the right status by the HTTP layer.
 */
export class MatrixError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'MatrixError';
  }

  toJSON(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const Errors = {
  badJson: (msg = 'Content not JSON or not of the expected shape') => new MatrixError(400, 'M_BAD_JSON', msg),
  notJson: (msg = 'Content not JSON.') => new MatrixError(400, 'M_NOT_JSON', msg),
  missingParam: (name: string) => new MatrixError(400, 'M_MISSING_PARAM', `Missing parameter: ${name}`),
  invalidParam: (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg),
  missingToken: () => new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token'),
  unknownToken: (softLogout = false) =>
    new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unknown or expired access token', { soft_logout: softLogout }),
  forbidden: (msg: string) => new MatrixError(403, 'M_FORBIDDEN', msg),
  notFound: (msg = 'Not found') => new MatrixError(404, 'M_NOT_FOUND', msg),
  unrecognized: (status = 404) => new MatrixError(status, 'M_UNRECOGNIZED', 'Unrecognized request'),
  tooLarge: (msg = 'Request too large') => new MatrixError(413, 'M_TOO_LARGE', msg),
  limitExceeded: (retryAfterMs: number) =>
    new MatrixError(
      429,
      'M_LIMIT_EXCEEDED',
      'Too many requests',
      { retry_after_ms: retryAfterMs },
      { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) },
    ),
  userInUse: () => new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.'),
  invalidUsername: (msg = 'Invalid username') => new MatrixError(400, 'M_INVALID_USERNAME', msg),
  unknown: (msg: string, status = 400) => new MatrixError(status, 'M_UNKNOWN', msg),
  guestAccessForbidden: () => new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access not allowed'),
  unsupportedRoomVersion: (v: string) =>
    new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Unsupported room version: ${v}`),
};
