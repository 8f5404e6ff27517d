/** Aggregating rounds and formatting figures (pure). */
import { medianRange, type MedianRange } from './stats.js';

export interface RoundResult {
  round: number;
  metrics: Record<string, number>;
  ok: boolean;
  problems: string[];
}

export interface ScenarioReport {
  name: string;
  opsLabel: string;
  rounds: RoundResult[];
  /** Per figure: median and range over the rounds. */
  summary: Record<string, MedianRange>;
  ok: boolean;
}

/** Median and range of every figure over the rounds (figures missing from a round are skipped for it). */
export function aggregateRounds(rounds: readonly RoundResult[]): Record<string, MedianRange> {
  const keys: string[] = [];
  for (const r of rounds) for (const k of Object.keys(r.metrics)) if (!keys.includes(k)) keys.push(k);
  const out: Record<string, MedianRange> = {};
  for (const k of keys) out[k] = medianRange(rounds.map((r) => r.metrics[k] ?? NaN));
  return out;
}

/** A figure for humans: "–" for no value, integers as is, others with 3 significant digits (at least 1 decimal below 100). */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function fmtMedianRange(m: MedianRange): string {
  if (m.n <= 1 || m.min === m.max) return fmt(m.median);
  return `${fmt(m.median)} [${fmt(m.min)}–${fmt(m.max)}]`;
}

/** Lines "  name  value" aligned. */
export function formatFigures(figures: Record<string, string>, indent = '  '): string {
  const w = Math.max(0, ...Object.keys(figures).map((k) => k.length));
  return Object.entries(figures)
    .map(([k, v]) => `${indent}${k.padEnd(w)}  ${v}`)
    .join('\n');
}

/** A plain-text table: first row is the header. */
export function formatTable(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (row: readonly string[]) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = rows.map(line);
  if (out.length > 1) out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return out.join('\n');
}

/** JSON with NaN/Infinity written as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}
