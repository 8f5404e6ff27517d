/**
 * `myelin register-user`: creates a user through the running server's
 * shared-secret registration admin API (/_synapse/admin/v1/register), the
 * same API Synapse's register_new_matrix_user uses.
 */
import { createHmac } from 'node:crypto';
import type { LoadedConfig } from '../config/load.js';

export function clientUrlOf(config: LoadedConfig): string {
  for (const l of config.listeners) {
    if (l.type !== 'http' || !l.resources.some((r) => r.names.includes('client'))) continue;
    const addr = l.bind_addresses?.[0] ?? l.bind_address ?? '127.0.0.1';
    const host = addr === '::' || addr === '0.0.0.0' ? '127.0.0.1' : addr.includes(':') ? `[${addr}]` : addr;
    return `${l.tls ? 'https' : 'http'}://${host}:${l.port}`;
  }
  if (config.public_baseurl) return config.public_baseurl.replace(/\/+$/, '');
  throw new Error('no listener with the client resource in the configuration');
}

export function registrationMac(secret: string, nonce: string, user: string, password: string, admin: boolean): string {
  const h = createHmac('sha1', secret);
  h.update(nonce).update('\0').update(user).update('\0').update(password).update('\0').update(admin ? 'admin' : 'notadmin');
  return h.digest('hex');
}

export async function registerUser(
  baseUrl: string,
  secret: string,
  user: string,
  password: string,
  admin: boolean,
): Promise<{ user_id: string }> {
  const url = `${baseUrl}/_synapse/admin/v1/register`;
  const nonceRes = await fetch(url);
  if (!nonceRes.ok) throw new Error(`server refused to give a registration nonce: ${nonceRes.status} ${await nonceRes.text()}`);
  const { nonce } = (await nonceRes.json()) as { nonce: string };
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nonce, username: user, password, admin, mac: registrationMac(secret, nonce, user, password, admin) }),
  });
  const body = (await res.json()) as any;
  if (!res.ok) throw new Error(`registration failed: ${body.errcode ?? res.status}: ${body.error ?? ''}`);
  return body;
}
