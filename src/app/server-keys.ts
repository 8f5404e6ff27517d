/**
 * The server's Ed25519 signing keys, read from `signing_key_path` in Synapse's
 * format: one key per line, `ed25519 <version> <unpadded base64 seed>`.
 */
import { readFileSync } from 'node:fs';
import { parseSigningKeys, type SigningKey } from '../matrix/signing.js';

export type { SigningKey };

export interface ServerKeys {
  serverName: string;
  /** The key new signatures are made with (the first in the file). */
  signing: SigningKey;
  all: SigningKey[];
}

export function loadServerKeys(serverName: string, path: string): ServerKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`signing_key_path: cannot read ${path}: ${(e as Error).message}`);
  }
  let all: SigningKey[];
  try {
    all = parseSigningKeys(text);
  } catch (e) {
    throw new Error(`signing_key_path: ${path}: ${(e as Error).message}`);
  }
  if (!all.length) throw new Error(`signing_key_path: ${path} holds no key`);
  return { serverName, signing: all[0]!, all };
}
