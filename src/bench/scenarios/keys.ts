/**
 * keys-query / keys-claim (issue 7's figures): U users (`--key-users`, default
 * 100) each log in D devices (`--key-devices`, default 5) and upload signed
 * device keys, 50 signed one-time keys and a fallback key per device
 * (prepared once, shared by both scenarios, not timed). Then, with C loops
 * for `--duration`:
 *   keys-query — POST /keys/query for all U users (every device):
 *                `query_p…_ms`, `devices_returned` (must be U × D).
 *   keys-claim — POST /keys/claim of one signed_curve25519 key from each of
 *                min(U × D, 100) devices: `claim_p…_ms`, `keys_claimed` per
 *                request (must equal the devices asked; once the one-time
 *                keys are used up the fallback keys answer), and a check that
 *                no one-time key was handed out twice.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { canonicalJson } from '../../matrix/canonical-json.js';
import type { Session } from '../client.js';
import type { BenchContext, Scenario, ScenarioOutcome } from '../context.js';
import { ratePerSecond } from '../stats.js';
import { now, pool } from '../util.js';
import { deadlineFrom, ErrorBudget, latencyFigures, loopUntil } from './common.js';

const OTKS_PER_DEVICE = 50;
const CLAIM_DEVICES = 100;

interface KeysState {
  devices: Array<{ userId: string; deviceId: string }>;
  users: string[];
  asker: Session;
}

const prepared = new WeakMap<BenchContext, Promise<KeysState>>();

function signer() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const pub = raw.toString('base64').replace(/=+$/, '');
  const signObj = (obj: Record<string, unknown>, userId: string, keyId: string) => {
    const { signatures: _s, unsigned: _u, ...rest } = obj;
    const sig = sign(null, Buffer.from(canonicalJson(rest)), privateKey).toString('base64').replace(/=+$/, '');
    return { ...obj, signatures: { [userId]: { [keyId]: sig } } };
  };
  return { pub, signObj };
}

function fakeCurveKey(seed: string): string {
  return Buffer.from(seed.padEnd(32, '.').slice(0, 32)).toString('base64').replace(/=+$/, '');
}

async function uploadDeviceKeys(ctx: BenchContext, s: Session): Promise<void> {
  const deviceId = s.deviceId!;
  const { pub, signObj } = signer();
  const keyId = `ed25519:${deviceId}`;
  const deviceKeys = signObj(
    {
      user_id: s.userId,
      device_id: deviceId,
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: { [`curve25519:${deviceId}`]: fakeCurveKey(`c${deviceId}`), [keyId]: pub },
    },
    s.userId,
    keyId,
  );
  const otks: Record<string, unknown> = {};
  for (let i = 0; i < OTKS_PER_DEVICE; i++) otks[`signed_curve25519:A${i}`] = signObj({ key: fakeCurveKey(`${deviceId}/${i}`) }, s.userId, keyId);
  const fallback = { 'signed_curve25519:F0': signObj({ key: fakeCurveKey(`${deviceId}/fb`), fallback: true }, s.userId, keyId) };
  await ctx.api.keysUpload(s, { device_keys: deviceKeys, one_time_keys: otks, fallback_keys: fallback });
}

function prepare(ctx: BenchContext): Promise<KeysState> {
  let p = prepared.get(ctx);
  if (!p) {
    p = (async () => {
      const { keyUsers, keyDevices, concurrency } = ctx.opts;
      const first = await pool(Array.from({ length: keyUsers }), concurrency, (_, i) => ctx.registerUser(`k${i}`));
      const logins = first.flatMap((s) => Array.from({ length: keyDevices - 1 }, () => s.userId));
      const extra = await pool(logins, concurrency, (userId) => ctx.api.login(userId, ctx.password));
      const sessions = [...first, ...extra];
      await pool(sessions, concurrency, (s) => uploadDeviceKeys(ctx, s));
      return {
        devices: sessions.map((s) => ({ userId: s.userId, deviceId: s.deviceId! })),
        users: first.map((s) => s.userId),
        asker: ctx.users[0] ?? first[0]!,
      };
    })();
    prepared.set(ctx, p);
  }
  return p;
}

async function timed(ctx: BenchContext, label: string, call: () => Promise<{ ms: number; problem?: string }>): Promise<ScenarioOutcome & { latencies: number[] }> {
  const latencies: number[] = [];
  const budget = new ErrorBudget();
  const problems = new Set<string>();
  const t0 = now();
  await loopUntil(ctx.opts.concurrency, deadlineFrom(ctx), () => budget.exhausted, async () => {
    try {
      const r = await call();
      latencies.push(r.ms);
      if (r.problem) problems.add(r.problem);
      budget.ok();
    } catch (e) {
      budget.fail(e);
    }
  });
  const elapsed = now() - t0;
  return {
    latencies,
    metrics: { requests: latencies.length, errors: budget.errors, requests_per_s: ratePerSecond(latencies.length, elapsed), ...latencyFigures(label, latencies) },
    ops: latencies.length,
    opsLabel: 'request',
    ok: budget.errors === 0 && latencies.length > 0 && problems.size === 0,
    problems: [...budget.problems(), ...problems],
  };
}

export const keysQueryScenario: Scenario<KeysState> = {
  name: 'keys-query',
  prepare,
  run: async (ctx, st) => {
    const body = Object.fromEntries(st.users.map((u) => [u, [] as string[]]));
    const want = st.devices.length;
    let returned = 0;
    const out = await timed(ctx, 'query', async () => {
      const res = await ctx.api.keysQuery(st.asker, body);
      returned = Object.values(res.json?.device_keys ?? {}).reduce((n, d) => n + Object.keys(d).length, 0);
      return { ms: res.ms, ...(returned !== want ? { problem: `keys/query returned ${returned} devices, expected ${want}` } : {}) };
    });
    out.metrics.devices_returned = returned;
    return out;
  },
};

export const keysClaimScenario: Scenario<KeysState> = {
  name: 'keys-claim',
  prepare,
  run: async (ctx, st) => {
    const asked = st.devices.slice(0, CLAIM_DEVICES);
    const body: Record<string, Record<string, string>> = {};
    for (const d of asked) (body[d.userId] ??= {})[d.deviceId] = 'signed_curve25519';
    const seen = new Set<string>();
    let duplicates = 0;
    let claimed = 0;
    const out = await timed(ctx, 'claim', async () => {
      const res = await ctx.api.keysClaim(st.asker, body);
      let n = 0;
      for (const [u, devs] of Object.entries(res.json?.one_time_keys ?? {})) {
        for (const [d, keys] of Object.entries(devs as Record<string, Record<string, any>>)) {
          for (const [keyId, k] of Object.entries(keys)) {
            n++;
            if (k?.fallback) continue; // the fallback key may be handed out again
            const id = `${u}|${d}|${keyId}`;
            if (seen.has(id)) duplicates++;
            seen.add(id);
          }
        }
      }
      claimed = n;
      return { ms: res.ms, ...(n !== asked.length ? { problem: `keys/claim returned ${n} keys for ${asked.length} devices` } : {}) };
    });
    out.metrics.keys_claimed = claimed;
    out.metrics.duplicate_one_time_keys = duplicates;
    if (duplicates) {
      out.ok = false;
      out.problems.push(`${duplicates} one-time keys were handed out twice`);
    }
    return out;
  },
};
