/**
 * Verification of `content.third_party_invite.signed` against the public keys
 * of an m.room.third_party_invite event (auth rule "If content has a
 * third_party_invite property", rooms v1+).
 *
 * The `signed` object is signed like any signed JSON (appendices, "Signing
 * JSON"): Ed25519 over the canonical JSON of the object without `signatures`
 * and `unsigned`. The identity server's keys are unpadded base64 (standard or
 * URL-safe alphabet).
 */
import { createPublicKey, verify } from 'node:crypto';
import { canonicalJson } from '../canonical-json.js';
import { isObject } from './util.js';

/** Verifies one signature (unpadded base64) over `signedObject` with one public key (unpadded base64). */
export type SignatureVerifier = (signedObject: Record<string, unknown>, signatureB64: string, publicKeyB64: string) => boolean;

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Node's base64 decoder accepts both alphabets and missing padding. */
function decodeB64(s: string): Buffer {
  return Buffer.from(s, 'base64');
}

export const ed25519Verifier: SignatureVerifier = (signedObject, signatureB64, publicKeyB64) => {
  try {
    const raw = decodeB64(publicKeyB64);
    const sig = decodeB64(signatureB64);
    if (raw.length !== 32 || sig.length !== 64) return false;
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    const { signatures: _s, unsigned: _u, ...rest } = signedObject;
    return verify(null, Buffer.from(canonicalJson(rest), 'utf8'), key, sig);
  } catch {
    return false;
  }
};

/** Public keys of an m.room.third_party_invite event: `public_key` and `public_keys[].public_key`. */
export function thirdPartyInvitePublicKeys(content: Record<string, any> | undefined): string[] {
  const keys: string[] = [];
  if (!isObject(content)) return keys;
  if (typeof content.public_key === 'string') keys.push(content.public_key);
  if (Array.isArray(content.public_keys)) {
    for (const k of content.public_keys) if (isObject(k) && typeof k.public_key === 'string') keys.push(k.public_key);
  }
  return keys;
}

/** "If any signature in signed matches any public key in the m.room.third_party_invite event". */
export function anySignatureMatches(
  signed: Record<string, any>,
  publicKeys: string[],
  verifier: SignatureVerifier = ed25519Verifier,
): boolean {
  const sigs = signed.signatures;
  if (!isObject(sigs)) return false;
  for (const server of Object.values(sigs)) {
    if (!isObject(server)) continue;
    for (const [keyId, sig] of Object.entries(server)) {
      if (typeof sig !== 'string' || !keyId.startsWith('ed25519:')) continue;
      for (const pk of publicKeys) if (verifier(signed, sig, pk)) return true;
    }
  }
  return false;
}
