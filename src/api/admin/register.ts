/**
 * Synapse's admin API for shared-secret registration (what
 * register_new_matrix_user and `myelin register-user` call), plus the
 * registration-token admin API (create/list/get) in Synapse's shapes.
 */
import type { Services } from '../../app/services.js';
import { Errors } from '../../util/errors.js';
import { optionalBoolean, optionalString, requireString } from '../validate.js';
import type { MatrixRequest, Router } from '../types.js';
import type { RegistrationTokenRow } from '../../services/accounts/store.js';

/** Throws 403 unless the requester is a server admin. */
export async function requireAdmin(s: Services, req: MatrixRequest): Promise<string> {
  const userId = req.requester.userId;
  if (!(await s.accounts.isAdmin(userId))) throw Errors.forbidden('You are not a server admin');
  return userId;
}

function tokenJson(t: RegistrationTokenRow): Record<string, unknown> {
  return { token: t.token, uses_allowed: t.uses_allowed, pending: t.pending, completed: t.completed, expiry_time: t.expiry_time };
}

function nullableInt(body: Record<string, any>, key: string): number | null | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw Errors.invalidParam(`${key} must be an integer or null`);
  return v;
}

export function adminRegisterRoutes(r: Router, s: Services): void {
  r.get('/_synapse/admin/v1/register', async () => ({ nonce: await s.sharedSecretRegistration.newNonce() }));

  r.post('/_synapse/admin/v1/register', async (req) => {
    const body = req.json();
    const nonce = requireString(body, 'nonce');
    const username = requireString(body, 'username');
    const password = requireString(body, 'password');
    const mac = requireString(body, 'mac');
    const admin = optionalBoolean(body, 'admin') ?? false;
    const displayname = optionalString(body, 'displayname');
    const userType = optionalString(body, 'user_type');
    if (username.includes('\0')) throw Errors.invalidUsername('Invalid username');
    if (password.includes('\0') || password.length > 512) throw Errors.invalidParam('Invalid password');
    await s.sharedSecretRegistration.verify({ nonce, user: username, password, admin, userType, mac });
    const userId = await s.accounts.register({ localpart: username.toLowerCase(), password, admin, displayname, userType });
    const session = await s.accounts.issueSession(userId, {});
    return { user_id: userId, access_token: session.access_token, device_id: session.device_id, home_server: s.serverName };
  });

  r.get(
    '/_synapse/admin/v1/registration_tokens',
    async (req) => {
      await requireAdmin(s, req);
      const valid = req.query.valid;
      if (valid !== undefined && valid !== 'true' && valid !== 'false') throw Errors.invalidParam("'valid' must be true or false");
      let tokens = await s.registrationTokens.list();
      if (valid !== undefined) {
        const flags = await Promise.all(tokens.map((t) => s.registrationTokens.isValid(t.token)));
        tokens = tokens.filter((_, i) => flags[i] === (valid === 'true'));
      }
      return { registration_tokens: tokens.map(tokenJson) };
    },
    { auth: 'required' },
  );

  r.get(
    '/_synapse/admin/v1/registration_tokens/:token',
    async (req) => {
      await requireAdmin(s, req);
      const t = await s.registrationTokens.get(req.params.token!);
      if (!t) throw Errors.notFound('No such registration token');
      return tokenJson(t);
    },
    { auth: 'required' },
  );

  r.post(
    '/_synapse/admin/v1/registration_tokens/new',
    async (req) => {
      await requireAdmin(s, req);
      const body = req.jsonOrEmpty();
      const token = body.token;
      if (token !== undefined && typeof token !== 'string') throw Errors.invalidParam('token must be a string');
      const length = nullableInt(body, 'length');
      const t = await s.registrationTokens.create({
        token,
        usesAllowed: nullableInt(body, 'uses_allowed'),
        expiryTime: nullableInt(body, 'expiry_time'),
        length: length ?? undefined,
      });
      return tokenJson(t);
    },
    { auth: 'required' },
  );
}
