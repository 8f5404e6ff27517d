/**
 * Matrix "unpadded Base64" (appendices: Unpadded Base64) and its URL-safe
 * variant. Encoding never emits `=`; decoding accepts input with or without
 * padding, as the spec asks, but rejects characters outside the alphabet and
 * impossible lengths (Node's own decoder silently skips garbage, which would
 * let a malformed signature or key "decode").
 */

const STD_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_RE = /^[A-Za-z0-9\-_]*={0,2}$/;

export class Base64Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Base64Error';
  }
}

function stripPadding(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  return end === s.length ? s : s.slice(0, end);
}

function checkShape(input: string, re: RegExp, what: string): string {
  if (!re.test(input)) throw new Base64Error(`invalid ${what}: unexpected character`);
  const body = stripPadding(input);
  // A final group of a single character cannot encode a whole byte.
  if (body.length % 4 === 1) throw new Base64Error(`invalid ${what}: bad length`);
  // If padding is present it must complete the last group.
  if (body.length !== input.length && input.length % 4 !== 0) {
    throw new Base64Error(`invalid ${what}: bad padding`);
  }
  return body;
}

/** Standard alphabet, no padding. */
export function encodeBase64(data: Uint8Array): string {
  return stripPadding(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'));
}

/** URL-safe alphabet (`-`, `_`), no padding. */
export function encodeBase64Url(data: Uint8Array): string {
  // Node's base64url output is already unpadded.
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64url');
}

/** Decodes standard base64, padded or not. Throws Base64Error on malformed input. */
export function decodeBase64(input: string): Buffer {
  const body = checkShape(input, STD_RE, 'base64');
  return Buffer.from(body, 'base64');
}

/** Decodes URL-safe base64, padded or not. Throws Base64Error on malformed input. */
export function decodeBase64Url(input: string): Buffer {
  const body = checkShape(input, URL_RE, 'url-safe base64');
  return Buffer.from(body, 'base64url');
}

/** Non-throwing variant: undefined when the input is not valid standard base64. */
export function tryDecodeBase64(input: string): Buffer | undefined {
  try {
    return decodeBase64(input);
  } catch {
    return undefined;
  }
}

/** Converts standard unpadded base64 to its URL-safe form. */
export function base64ToUrlSafe(s: string): string {
  return stripPadding(s).replace(/\+/g, '-').replace(/\//g, '_');
}
