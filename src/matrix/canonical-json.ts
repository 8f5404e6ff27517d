/**
 * Canonical JSON (appendices: Canonical JSON): the shortest UTF-8 JSON
 * encoding, object keys sorted by Unicode code point, no insignificant
 * whitespace, integers only.
 *
 * String escaping: JSON.stringify already produces exactly the spec grammar's
 * escapes — `\" \\ \b \f \n \r \t`, `\u00XX` (lower-case hex) for the other
 * control characters, everything else (including non-ASCII and U+007F) raw.
 * Lone surrogates become `\udXXX`, as Python's json does.
 *
 * Numbers: the spec allows only integers in [-(2^53)+1, 2^53-1]. Room versions
 * 1–5 predate enforcement, so `canonicalJson` by default still encodes other
 * numbers (large integers without exponent, floats in JS shortest form); pass
 * `{ strict: true }` or call `assertStrictCanonical` to reject them (v6+).
 * `-0` is encoded as `0` (as the spec's own example shows).
 */

export const MAX_SAFE_CANONICAL_INT = 2 ** 53 - 1;
export const MIN_SAFE_CANONICAL_INT = -(2 ** 53) + 1;

export class CanonicalJsonError extends Error {
  /** Dotted path to the offending value, e.g. `content.count`. */
  readonly path: string;
  constructor(message: string, path: string) {
    super(path ? `${message} at ${path}` : message);
    this.name = 'CanonicalJsonError';
    this.path = path;
  }
}

export interface CanonicalJsonOptions {
  /** Reject floats and integers outside the canonical range (room v6+). */
  strict?: boolean;
}

const SURROGATE_RE = /[\uD800-\uDFFF]/;

/**
 * Code-point comparison. JS string comparison is by UTF-16 code unit, which
 * differs from code-point order only when astral characters (surrogate pairs)
 * meet BMP characters in U+E000..U+FFFF; so the slow path runs only then.
 */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done) return cb.done ? 0 : -1;
    if (cb.done) return 1;
    const d = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** Object keys in canonical order (code-point order). */
export function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  keys.sort();
  for (const k of keys) {
    if (SURROGATE_RE.test(k)) {
      keys.sort(compareCodePoints);
      break;
    }
  }
  return keys;
}

function encodeNumber(n: number, strict: boolean, path: string): string {
  if (!Number.isFinite(n)) throw new CanonicalJsonError('non-finite number', path);
  if (Number.isInteger(n)) {
    if (n > MAX_SAFE_CANONICAL_INT || n < MIN_SAFE_CANONICAL_INT) {
      if (strict) throw new CanonicalJsonError('integer out of canonical range', path);
      // Avoid JS's exponent form (1e+21) for big integers.
      return BigInt(n).toString();
    }
    return n === 0 ? '0' : String(n); // also maps -0 to 0
  }
  if (strict) throw new CanonicalJsonError('float not allowed', path);
  return String(n);
}

function encode(value: unknown, strict: boolean, path: string, out: string[]): void {
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      out.push(encodeNumber(value, strict, path));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object': {
      if (value === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          const v = value[i];
          // Like JSON.stringify: holes/undefined in arrays become null.
          if (v === undefined) out.push('null');
          else encode(v, strict, path ? `${path}.${i}` : String(i), out);
        }
        out.push(']');
        return;
      }
      if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set || value instanceof Date) {
        throw new CanonicalJsonError('value is not plain JSON', path);
      }
      out.push('{');
      let first = true;
      for (const k of sortedKeys(value)) {
        const v = (value as Record<string, unknown>)[k];
        // Like JSON.stringify: undefined-valued properties are omitted.
        if (v === undefined) continue;
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(k), ':');
        encode(v, strict, path ? `${path}.${k}` : k, out);
      }
      out.push('}');
      return;
    }
    default:
      throw new CanonicalJsonError(`cannot encode ${typeof value}`, path);
  }
}

// ---- fast path ---------------------------------------------------------------
//
// Events are encoded several times each (content hash, reference hash,
// signature checks), so the common case is worth a lean encoder: plain
// objects (prototype Object.prototype or null) and arrays, no path strings
// built along the way, and strings that need no escaping written between
// quotes without a JSON.stringify call. Anything else — another prototype, a
// value to reject, a number outside the canonical integers, an astral
// character in a key — gives up (`FALLBACK`) and the general encoder above
// runs from the start: the same text, or the same error with its path.

/** Thrown by the fast encoder to hand the value to the general one. */
const FALLBACK = new Error('canonical JSON: general encoder');
/** Characters JSON.stringify escapes (and lone surrogates, which it escapes; pairs take the slow path too). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const ESCAPE_RE = /["\\\u0000-\u001f\ud800-\udfff]/;
const OBJECT_PROTO = Object.prototype;

function quoteFast(s: string): string {
  return ESCAPE_RE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/**
 * Sorts by UTF-16 code units, as Array.prototype.sort() without a comparator
 * does, in place: insertion sort for the few keys of an event's objects
 * (the built-in sort allocates a work copy each call).
 */
function sortSmall(keys: string[]): void {
  const n = keys.length;
  if (n > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

function encodeFast(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quoteFast(value);
    case 'number':
      // Safe integers only (both modes encode them alike); others take the general path.
      if (!Number.isSafeInteger(value)) throw FALLBACK;
      return value === 0 ? '0' : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        const n = value.length;
        if (n === 0) return '[]';
        let out = '[';
        for (let i = 0; i < n; i++) {
          const v: unknown = value[i];
          if (i > 0) out += ',';
          out += v === undefined ? 'null' : encodeFast(v);
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== OBJECT_PROTO && proto !== null) throw FALLBACK;
      const keys = Object.keys(value);
      sortSmall(keys);
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined) continue;
        // An escaped or surrogate-holding key: code-point order and escapes are the general encoder's business.
        if (ESCAPE_RE.test(k)) throw FALLBACK;
        out += (first ? '"' : ',"') + k + '":' + encodeFast(v);
        first = false;
      }
      return out + '}';
    }
    default:
      throw FALLBACK;
  }
}

/**
 * The members of a plain object as canonical JSON, for a caller that encodes
 * several variants of one object (an event: its content hash, reference hash
 * and stored form differ by a few top-level keys) and assembles each from the
 * same texts with `joinMembers`: the keys in canonical order (those with
 * undefined values left out) and each value's canonical text. Undefined when
 * the general encoder is needed (a key to escape, a number that is not a
 * safe integer, a value that is not plain JSON): use `canonicalJson` then.
 */
export function canonicalMembers(obj: object): { keys: string[]; texts: string[] } | undefined {
  const proto: unknown = Object.getPrototypeOf(obj);
  if (proto !== OBJECT_PROTO && proto !== null) return undefined;
  const all = Object.keys(obj);
  sortSmall(all);
  const keys: string[] = [];
  const texts: string[] = [];
  try {
    for (const k of all) {
      const v = (obj as Record<string, unknown>)[k];
      if (v === undefined) continue;
      if (ESCAPE_RE.test(k)) return undefined;
      keys.push(k);
      texts.push(encodeFast(v));
    }
  } catch (e) {
    if (e === FALLBACK) return undefined;
    throw e;
  }
  return { keys, texts };
}

/**
 * `{"key":text,...}` from members in canonical order (`canonicalMembers`),
 * merged with `extraKeys`/`extraTexts` (also in order, none of them among
 * `keys`): the canonical JSON of the object with those members added.
 * Keys must need no escaping (as `canonicalMembers` gives them).
 */
export function joinMembers(keys: readonly string[], texts: readonly string[], extraKeys: readonly string[] = [], extraTexts: readonly string[] = []): string {
  let out = '{';
  let i = 0;
  let j = 0;
  while (i < keys.length || j < extraKeys.length) {
    const fromExtra = j < extraKeys.length && (i >= keys.length || extraKeys[j]! < keys[i]!);
    const k = fromExtra ? extraKeys[j]! : keys[i]!;
    const t = fromExtra ? extraTexts[j++]! : texts[i++]!;
    out += (out.length > 1 ? ',"' : '"') + k + '":' + t;
  }
  return out + '}';
}

/** Canonical JSON text of `value`. Throws CanonicalJsonError for non-JSON values. */
export function canonicalJson(value: unknown, options?: CanonicalJsonOptions): string {
  try {
    return encodeFast(value);
  } catch (e) {
    if (e !== FALLBACK) throw e;
  }
  const out: string[] = [];
  encode(value, options?.strict === true, '', out);
  return out.join('');
}

/** Canonical JSON as UTF-8 bytes (what is hashed and signed). */
export function canonicalJsonBytes(value: unknown, options?: CanonicalJsonOptions): Buffer {
  return Buffer.from(canonicalJson(value, options), 'utf8');
}

/**
 * Throws CanonicalJsonError if `value` holds a float, an integer outside
 * [-(2^53)+1, 2^53-1], or a non-JSON value (room versions 6+ require this).
 */
export function assertStrictCanonical(value: unknown): void {
  check(value, '');
}

/** Boolean form of assertStrictCanonical. */
export function isStrictCanonical(value: unknown): boolean {
  try {
    check(value, '');
    return true;
  } catch (e) {
    if (e instanceof CanonicalJsonError) return false;
    throw e;
  }
}

function check(value: unknown, path: string): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      encodeNumber(value, true, path);
      return;
    case 'object':
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) check(value[i], path ? `${path}.${i}` : String(i));
        return;
      }
      for (const k of Object.keys(value)) {
        const v = (value as Record<string, unknown>)[k];
        if (v !== undefined) check(v, path ? `${path}.${k}` : k);
      }
      return;
    default:
      throw new CanonicalJsonError(`cannot encode ${typeof value}`, path);
  }
}
