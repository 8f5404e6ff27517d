/**
 * Sync tokens: opaque to clients, compact, versioned vectors of every stream
 * position (DESIGN.md §4).
 *
 *   s1_<events>_<typing>_<receipts>_<presence>_<account_data>_<to_device>_<device_lists>_<push_rules>
 *
 * `s1` is the format version. Streams added later append a field; a token
 * with fewer fields reads the missing ones as 0. The events part is a plain
 * number with one writer, or `m<min>~<writer>.<pos>~...` with several writers
 * (the minimum position below which every writer has finished, plus each
 * writer's own position), writer names percent-encoded.
 */
import { Errors } from '../util/errors.js';

export const SYNC_STREAMS = [
  'typing',
  'receipts',
  'presence',
  'account_data',
  'to_device',
  'device_lists',
  'push_rules',
] as const;

export type SyncStreamName = (typeof SYNC_STREAMS)[number];

export interface EventsPosition {
  /** Every event at or below this position is visible. */
  min: number;
  /** Per-writer positions above `min`, when events have several writers. */
  writers?: Record<string, number>;
}

export type SyncToken = { events: EventsPosition } & Record<SyncStreamName, number>;

export function emptyToken(): SyncToken {
  const t = { events: { min: 0 } } as SyncToken;
  for (const s of SYNC_STREAMS) t[s] = 0;
  return t;
}

function encodeEvents(p: EventsPosition): string {
  if (!hasWriterParts(p)) return String(p.min);
  const writers = Object.entries(p.writers ?? {}).filter(([, pos]) => pos > p.min);
  if (!writers.length) return String(p.min);
  return `m${p.min}` + writers.map(([w, pos]) => `~${encodeURIComponent(w).replace(/[_.~]/g, (c) => '%' + c.charCodeAt(0).toString(16))}.${pos}`).join('');
}

const DIGITS = /^\d+$/;

function decodeEvents(s: string): EventsPosition {
  if (DIGITS.test(s)) return { min: Number(s) };
  const m = /^m(\d+)((?:~[^~.]+\.\d+)*)$/.exec(s);
  if (!m) throw new Error('bad events position');
  const writers: Record<string, number> = {};
  for (const part of m[2]!.split('~').slice(1)) {
    const dot = part.lastIndexOf('.');
    writers[decodeURIComponent(part.slice(0, dot))] = Number(part.slice(dot + 1));
  }
  return { min: Number(m[1]), writers };
}

export function encodeSyncToken(t: SyncToken): string {
  // Every response encodes one or more (next_batch, prev_batch): concatenated, no arrays.
  let out = 's1_' + encodeEvents(t.events);
  for (let i = 0; i < SYNC_STREAMS.length; i++) out += '_' + t[SYNC_STREAMS[i]!];
  return out;
}

/** Parses a token, throwing M_INVALID_PARAM for anything that is not one. */
export function decodeSyncToken(token: string): SyncToken {
  const parts = token.split('_');
  if (parts[0] !== 's1' || parts.length < 2 || parts.length > SYNC_STREAMS.length + 2) {
    throw Errors.invalidParam('Invalid sync token');
  }
  try {
    const t = emptyToken();
    t.events = decodeEvents(parts[1]!);
    if (!position(t.events.min)) throw new Error('bad position');
    if (t.events.writers) for (const w in t.events.writers) if (!position(t.events.writers[w]!)) throw new Error('bad position');
    for (let i = 0; i < SYNC_STREAMS.length; i++) {
      const v = parts[i + 2];
      if (v === undefined) break;
      if (!DIGITS.test(v)) throw new Error('bad position');
      const n = Number(v);
      if (!position(n)) throw new Error('bad position');
      t[SYNC_STREAMS[i]!] = n;
    }
    return t;
  } catch {
    throw Errors.invalidParam('Invalid sync token');
  }
}

function position(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The highest events position a token covers (for a single-writer reader). */
export function eventsUpperBound(p: EventsPosition): number {
  return Math.max(p.min, ...Object.values(p.writers ?? {}));
}

/** Up to where the rows of `writer` are covered: its own position, or the minimum. */
export function eventsPositionFor(p: EventsPosition, writer: string): number {
  return Math.max(p.min, p.writers?.[writer] ?? 0);
}

/** Whether `a` covers every events row `b` covers: the minimum, and each writer `b` names. */
export function eventsCovers(a: EventsPosition, b: EventsPosition): boolean {
  if (a.min < b.min) return false;
  return Object.entries(b.writers ?? {}).every(([w, pos]) => eventsPositionFor(a, w) >= pos);
}

/** Whether two events positions cover the same rows (writer parts at or below the minimum say nothing). */
export function sameEventsPosition(a: EventsPosition, b: EventsPosition): boolean {
  return eventsCovers(a, b) && eventsCovers(b, a);
}

/** Whether `a` is at or beyond `b` on every stream (events: writer by writer). */
export function tokenCovers(a: SyncToken, b: SyncToken): boolean {
  return eventsCovers(a.events, b.events) && SYNC_STREAMS.every((s) => a[s] >= b[s]);
}

/** Whether a position names a writer ahead of its minimum (a multi-writer reader must look writer by writer). */
export function hasWriterParts(p: EventsPosition): boolean {
  if (!p.writers) return false;
  for (const w in p.writers) if (p.writers[w]! > p.min) return true;
  return false;
}

/**
 * The position covering what both cover: the lower minimum, and each writer
 * at the lower of its two positions (writers named by neither fall to the
 * minimum).
 */
export function eventsMeet(a: EventsPosition, b: EventsPosition): EventsPosition {
  return combineEvents(a, b, Math.min);
}

/** `pick` applied to the minimums and to each writer's two positions; writer parts at or below the minimum dropped. */
function combineEvents(a: EventsPosition, b: EventsPosition, pick: (x: number, y: number) => number): EventsPosition {
  const min = pick(a.min, b.min);
  const writers: Record<string, number> = {};
  for (const w of new Set([...Object.keys(a.writers ?? {}), ...Object.keys(b.writers ?? {})])) {
    const pos = pick(eventsPositionFor(a, w), eventsPositionFor(b, w));
    if (pos > min) writers[w] = pos;
  }
  return Object.keys(writers).length ? { min, writers } : { min };
}

/** `p` with no writer beyond `upTo` (a page of rows cut at the row at `upTo`). */
export function eventsClamp(p: EventsPosition, upTo: number): EventsPosition {
  return eventsMeet(p, { min: upTo });
}

/** Whether the row `position` of `writer` lies in (from, to], writer by writer. */
export function eventsRowIn(from: EventsPosition, to: EventsPosition, writer: string, position: number): boolean {
  return position > eventsPositionFor(from, writer) && position <= eventsPositionFor(to, writer);
}

/** The position covering what either covers: the higher minimum, and each writer at the higher of its two positions. */
export function eventsJoin(a: EventsPosition, b: EventsPosition): EventsPosition {
  return combineEvents(a, b, Math.max);
}
