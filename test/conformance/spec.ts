/**
 * Schema conformance helper: loads the Matrix OpenAPI definitions
 * (test/fixtures/matrix-spec/data/api/client-server/*.yaml), resolves their `$ref`s
 * (relative to the file that holds each ref, into definitions/, schemas/,
 * event-schemas/ ...), compiles the response schemas with ajv and validates
 * real response bodies against them.
 *
 * Lookup is by the real request: method + URL path (`/_matrix/client/v3/...`,
 * r0 is treated as v3) is matched against every `servers.basePath + path`
 * template of the client-server API, then the response for the actual status
 * code is taken. A status the operation does not document is reported as a
 * violation when it is a success (2xx); an undocumented error status is still
 * checked against the standard error body (definitions/errors/error.yaml).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

/**
 * The specification's data: a copy vendored in test/fixtures/matrix-spec (see
 * its VERSION and LICENSE), or another checkout's `data` folder named by
 * MYELIN_SPEC_DATA.
 */
export const SPEC_DATA = process.env.MYELIN_SPEC_DATA ?? resolve(import.meta.dirname, '../fixtures/matrix-spec/data');
const CS_DIR = join(SPEC_DATA, 'api/client-server');
const ERROR_SCHEMA_FILE = join(CS_DIR, 'definitions/errors/error.yaml');
const UIA_SCHEMA_FILE = join(CS_DIR, 'definitions/auth_response.yaml');

// ---------------------------------------------------------------- loading

const docs = new Map<string, any>();
function loadDoc(file: string): any {
  let d = docs.get(file);
  if (d === undefined) {
    d = parse(readFileSync(file, 'utf8'));
    docs.set(file, d);
  }
  return d;
}

function pointer(doc: any, fragment: string, where: string): any {
  if (!fragment || fragment === '/') return doc;
  let cur = doc;
  for (const raw of fragment.replace(/^\//, '').split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur == null || !(key in cur)) throw new Error(`unresolvable $ref ${where}`);
    cur = cur[key];
  }
  return cur;
}

const derefCache = new Map<string, any>();

/**
 * Returns `node` with every `$ref` inlined. Refs are relative to `file`.
 * A ref already being expanded (a cycle) becomes `{}` (accept anything), which
 * only loosens the check at the recursion point.
 */
export function deref(node: any, file: string, stack: string[] = []): any {
  if (Array.isArray(node)) return node.map((n) => deref(n, file, stack));
  if (node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    const [filePart, fragment = ''] = node.$ref.split('#');
    const target = filePart ? resolve(dirname(file), filePart) : file;
    const key = `${target}#${fragment}`;
    let resolved: any;
    if (stack.includes(key)) resolved = {};
    else if (derefCache.has(key)) resolved = derefCache.get(key);
    else {
      resolved = deref(pointer(loadDoc(target), fragment, `${node.$ref} from ${file}`), target, [...stack, key]);
      derefCache.set(key, resolved);
    }
    // OpenAPI 3.1 allows keywords beside $ref; keep the ones that constrain.
    const siblings = Object.fromEntries(Object.entries(node).filter(([k]) => !['$ref', 'description', 'summary', 'title', 'example', 'examples'].includes(k)));
    if (Object.keys(siblings).length === 0) return resolved;
    return { allOf: [resolved, deref(siblings, file, stack)] };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    // Nested $schema/$id are not allowed inside one compiled schema; examples never constrain.
    if (k === '$schema' || k === '$id' || k === 'example' || k === 'examples') continue;
    out[k] = deref(v, file, stack);
  }
  return out;
}

// ---------------------------------------------------------------- ajv

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
const addFormats = (addFormatsModule as any).default ?? addFormatsModule;
addFormats(ajv);
// The Matrix string formats (string-formats.yaml); their regexes are the ones noted there.
const prefixed = (p: string) => (s: string) => s.startsWith(p);
ajv.addFormat('mx-user-id', prefixed('@'));
ajv.addFormat('mx-room-id', prefixed('!'));
ajv.addFormat('mx-event-id', prefixed('$'));
ajv.addFormat('mx-room-alias', prefixed('#'));
ajv.addFormat('mx-mxc-uri', prefixed('mxc://'));
ajv.addFormat('mx-server-name', (s: string) => s.length > 0);
ajv.addFormat('mx-unpadded-base64', (s: string) => /^[A-Za-z0-9+/]*$/.test(s));
ajv.addFormat('mx-urlsafe-unpadded-base64', (s: string) => /^[A-Za-z0-9_-]*$/.test(s));
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
ajv.addFormat('float', { type: 'number', validate: () => true });

const compiled = new Map<string, ValidateFunction>();
function compile(key: string, build: () => any): ValidateFunction {
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(build());
    compiled.set(key, v);
  }
  return v;
}

function describeErrors(v: ValidateFunction, data: unknown): string[] {
  return (v.errors ?? []).map((e) => {
    let value: unknown = data;
    for (const seg of e.instancePath.split('/').slice(1)) value = (value as any)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
    const shown = JSON.stringify(value);
    return `${e.instancePath || '(root)'} ${e.message}${e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : ''} — got ${shown === undefined ? 'undefined' : shown.length > 160 ? shown.slice(0, 160) + '…' : shown}`;
  });
}

// ---------------------------------------------------------------- operations

interface Operation {
  file: string;
  template: string; // e.g. /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
  method: string;
  regex: RegExp;
  literalChars: number;
  op: any;
}

let operations: Operation[] | undefined;
function allOperations(): Operation[] {
  if (operations) return operations;
  operations = [];
  for (const name of readdirSync(CS_DIR)) {
    if (!name.endsWith('.yaml')) continue;
    const file = join(CS_DIR, name);
    const doc = loadDoc(file);
    const base: string = doc.servers?.[0]?.variables?.basePath?.default ?? '';
    for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
      const template = base + path;
      const regex = new RegExp('^' + template.split(/(\{[^}]+\})/).map((part) => (part.startsWith('{') ? '[^/]*' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('') + '$');
      for (const method of ['get', 'put', 'post', 'delete']) {
        if (item[method]) operations.push({ file, template, method: method.toUpperCase(), regex, literalChars: template.replace(/\{[^}]+\}/g, '').length, op: item[method] });
      }
    }
  }
  return operations;
}

/** Finds the documented operation for a real request path (query string ignored). */
export function findOperation(method: string, urlPath: string): Operation | undefined {
  const path = urlPath.split('?')[0]!.replace('/_matrix/client/r0/', '/_matrix/client/v3/');
  let candidates = allOperations().filter((o) => o.method === method.toUpperCase() && o.regex.test(path));
  // `/rooms/{roomId}/state/{eventType}` is `/state/{eventType}/{stateKey}` with an empty state key.
  if (!candidates.length) candidates = allOperations().filter((o) => o.method === method.toUpperCase() && o.regex.test(path + '/'));
  // Prefer the most literal template ("/pushrules/global/" over "/pushrules/{scope}/").
  candidates.sort((a, b) => b.literalChars - a.literalChars);
  return candidates[0];
}

export interface Conformance {
  ok: boolean;
  /** Which schema was used, for messages. */
  schema: string;
  errors: string[];
}

/** Validates a response body for `method urlPath` with `status`. */
export function checkResponse(method: string, urlPath: string, status: number, body: unknown): Conformance {
  const op = findOperation(method, urlPath);
  if (!op) return { ok: false, schema: '(none)', errors: [`no operation in the spec for ${method} ${urlPath}`] };
  const where = `${op.file.replace(SPEC_DATA + '/', '')} ${op.method} ${op.template} ${status}`;
  let response = op.op.responses?.[String(status)];
  if (response) response = deref(response, op.file);
  const schema = response?.content?.['application/json']?.schema;
  if (!schema) {
    // An error status the operation does not document (or documents without a
    // schema) must still carry the standard error body.
    if (status >= 400) {
      // A user-interactive-auth challenge (a 401 with `flows`) follows
      // auth_response.yaml even where an endpoint (e.g. cross-signing upload)
      // forgets to list it; other errors follow error.yaml.
      const uia = status === 401 && body !== null && typeof body === 'object' && 'flows' in body;
      const file = uia ? UIA_SCHEMA_FILE : ERROR_SCHEMA_FILE;
      const v = compile(file, () => deref(loadDoc(file), file));
      const ok = v(body) as boolean;
      return { ok, schema: `${where} (no schema for this status; ${uia ? 'UIA' : 'generic error'} schema)`, errors: ok ? [] : describeErrors(v, body) };
    }
    if (response) return { ok: true, schema: `${where} (no JSON schema)`, errors: [] };
    return { ok: false, schema: where, errors: [`status ${status} is not documented (documented: ${Object.keys(op.op.responses ?? {}).join(', ')})`] };
  }
  const v = compile(`${op.file}|${op.template}|${op.method}|${status}`, () => schema);
  const ok = v(body) as boolean;
  return { ok, schema: where, errors: ok ? [] : describeErrors(v, body) };
}

// ---------------------------------------------------------------- events

const EVENT_SCHEMA_DIR = join(SPEC_DATA, 'event-schemas/schema');
let eventSchemaFiles: Set<string> | undefined;

/** The event-schemas file for an event, or undefined if the spec has none for its type. */
export function eventSchemaFile(event: any): string | undefined {
  eventSchemaFiles ??= new Set(readdirSync(EVENT_SCHEMA_DIR).filter((f) => f.endsWith('.yaml')));
  const type = event?.type;
  if (typeof type !== 'string') return undefined;
  // m.room.message variants: m.room.message$m.text.yaml etc.
  const msgtype = event?.content?.msgtype;
  if (type === 'm.room.message' && typeof msgtype === 'string' && eventSchemaFiles.has(`${type}$${msgtype}.yaml`)) return join(EVENT_SCHEMA_DIR, `${type}$${msgtype}.yaml`);
  if (eventSchemaFiles.has(`${type}.yaml`)) return join(EVENT_SCHEMA_DIR, `${type}.yaml`);
  return undefined;
}

/**
 * Validates one event against its event schema. Room event schemas require
 * `room_id`, which events inside /sync omit by design: pass `roomId` to supply it.
 * Redacted events (content stripped) are skipped: the content schemas describe
 * unredacted content.
 */
export function checkEvent(event: any, roomId?: string): Conformance | undefined {
  const file = eventSchemaFile(event);
  if (!file) return undefined;
  if (event?.unsigned?.redacted_because) return undefined;
  const v = compile(file, () => deref(loadDoc(file), file));
  const data = roomId && event.room_id === undefined ? { ...event, room_id: roomId } : event;
  const ok = v(data) as boolean;
  return { ok, schema: file.replace(SPEC_DATA + '/', ''), errors: ok ? [] : describeErrors(v, data) };
}
