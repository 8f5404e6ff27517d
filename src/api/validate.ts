/** Small validators for request bodies and query parameters, throwing Matrix errors. */
import { Errors } from '../util/errors.js';

export function requireString(body: Record<string, any>, key: string): string {
  const v = body[key];
  if (v === undefined || v === null) throw Errors.missingParam(key);
  if (typeof v !== 'string') throw Errors.badJson(`'${key}' must be a string`);
  return v;
}

export function optionalString(body: Record<string, any>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw Errors.badJson(`'${key}' must be a string`);
  return v;
}

export function optionalBoolean(body: Record<string, any>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw Errors.badJson(`'${key}' must be a boolean`);
  return v;
}

export function optionalInteger(body: Record<string, any>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw Errors.badJson(`'${key}' must be an integer`);
  return v;
}

export function optionalObject(body: Record<string, any>, key: string): Record<string, any> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw Errors.badJson(`'${key}' must be an object`);
  return v;
}

/** Integer query parameter with bounds. */
export function queryInt(value: string | undefined, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === '') return def;
  if (!/^-?\d+$/.test(value)) throw Errors.invalidParam(`'${name}' must be an integer`);
  const n = Number(value);
  if (n < min) throw Errors.invalidParam(`'${name}' must be at least ${min}`);
  return Math.min(n, max);
}

export function queryBool(value: string | undefined, name: string, def: boolean): boolean {
  if (value === undefined) return def;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw Errors.invalidParam(`'${name}' must be true or false`);
}
