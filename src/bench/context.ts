/** What every scenario gets: the target, the prepared users and rooms, options. */
import type { BenchOptions } from './args.js';
import type { MatrixApi, Session } from './client.js';
import type { Rng } from './rng.js';

export interface BenchContext {
  opts: BenchOptions;
  api: MatrixApi;
  rng: Rng;
  /** Prefix of every user name this run registers. */
  runId: string;
  /** Users registered by the setup; every one of them is in every room of `rooms`. */
  users: Session[];
  /** Public rooms created by users[0] in the setup. */
  rooms: string[];
  /** The password of every user this run registers (for extra logins/devices). */
  password: string;
  /** Register one more user named `${runId}_${tag}`. */
  registerUser(tag: string): Promise<Session>;
  log(msg: string): void;
}

/** Key in message content that marks events this run sent (custom keys are allowed in content). */
export const MARKER = 'org.myelin.bench';

export interface Marker {
  run: string;
  scenario: string;
  seq: number;
}

export function markedContent(ctx: BenchContext, scenario: string, seq: number, bodyLen = 32): Record<string, unknown> {
  const body = `bench ${scenario} #${seq} `.padEnd(bodyLen, 'x');
  return { msgtype: 'm.text', body, [MARKER]: { run: ctx.runId, scenario, seq } satisfies Marker };
}

export function markerOf(content: Record<string, any> | undefined): Marker | undefined {
  const m = content?.[MARKER];
  return m && typeof m.run === 'string' && typeof m.scenario === 'string' ? (m as Marker) : undefined;
}

export interface ScenarioOutcome {
  /** Flat figures; names carry their unit (…_ms, …_per_s, …_bytes, …_mb). */
  metrics: Record<string, number>;
  /** Operations the server did for this round (sent events, joins, requests) — the CPU-per-op denominator. */
  ops: number;
  opsLabel: string;
  /** False when a correctness check failed (events missing or duplicated, errors). */
  ok: boolean;
  problems: string[];
}

export interface Scenario<S = unknown> {
  name: string;
  /** One-time preparation shared by all rounds (not timed, not sampled). */
  prepare?(ctx: BenchContext): Promise<S>;
  run(ctx: BenchContext, state: S, round: number): Promise<ScenarioOutcome>;
}
