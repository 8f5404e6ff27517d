/**
 * The command line: generate-config, run with layered configs, start on a
 * fresh data directory, configuration errors, TLS listeners.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, freePort, runCli } from '../../helpers/homeserver.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'myelin-cli-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs `myelin <args>` until `ready` matches its output, then stops it. */
async function runUntil(args: string[], ready: RegExp, env: Record<string, string> = {}, cwd = ROOT): Promise<{ output: string; code: number | null }> {
  const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, MYELIN_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`timed out; output:\n${output}`));
    }, 20_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (ready.test(output)) p.kill('SIGTERM');
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ output, code });
    });
  });
}

describe('myelin generate-config', () => {
  it('writes a Synapse-format config and key, and refuses to overwrite', async () => {
    const d = tmp();
    const cfg = join(d, 'homeserver.yaml');
    const first = await runCli(['generate-config', '--server-name', 'example.test', '--config-path', cfg, '--data-dir', d, '--port', '18999']);
    expect(first.code).toBe(0);
    const text = readFileSync(cfg, 'utf8');
    expect(text).toMatch(/^server_name: "example.test"/m);
    expect(text).toMatch(/port: 18999/);
    expect(text).toMatch(/names: \[client, federation\]/);
    expect(text).toMatch(/name: sqlite3/);
    expect(text).toMatch(/registration_shared_secret: "[A-Za-z0-9_-]{20,}"/);
    const keyLine = readFileSync(join(d, 'example.test.signing.key'), 'utf8').trim();
    expect(keyLine).toMatch(/^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}$/);
    const again = await runCli(['generate-config', '--server-name', 'example.test', '--config-path', cfg]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/refusing to overwrite/);
    expect(readFileSync(cfg, 'utf8')).toBe(text);
  });

  it('needs its required flags', async () => {
    const r = await runCli(['generate-config', '--config-path', join(tmp(), 'x.yaml')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--server-name/);
  });
});

describe('myelin run', () => {
  it('stops start-up on an invalid file with the key path and what was expected', async () => {
    const d = tmp();
    const cfg = join(d, 'homeserver.yaml');
    await runCli(['generate-config', '--server-name', 'bad.test', '--config-path', cfg, '--data-dir', d]);
    const bad = join(d, 'bad.yaml');
    writeFileSync(bad, 'listeners:\n  - port: "eighty"\n    type: http\nenable_registration: maybe\n');
    const badVersion = join(d, 'bad-version.yaml');
    writeFileSync(badVersion, 'default_room_version: "99"\n');
    const rv = await runCli(['run', '-c', cfg, '-c', badVersion]);
    expect(rv.code).toBe(1);
    expect(rv.stderr).toMatch(/default_room_version: unknown room version "99"/);
    const r = await runCli(['run', '-c', cfg, '-c', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/listeners\.0\.port: Expected number/);
    expect(r.stderr).toMatch(/enable_registration: Expected boolean/);
  });

  it('reports a file that is not YAML, and a missing one', async () => {
    const d = tmp();
    const f = join(d, 'broken.yaml');
    writeFileSync(f, 'server_name: [unclosed\n');
    const r = await runCli(['run', '-c', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not valid YAML/);
    const missing = await runCli(['run', '-c', join(d, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read config file/);
  });

  it('later files override earlier ones, and unknown keys warn', async () => {
    const d = tmp();
    const cfg = join(d, 'homeserver.yaml');
    const port = await freePort();
    await runCli(['generate-config', '--server-name', 'layers.test', '--config-path', cfg, '--data-dir', d, '--port', '1']);
    const over = join(d, 'over.yaml');
    writeFileSync(over, `listeners:\n  - port: ${port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    resources: [{names: [client]}]\nsome_future_key: 1\n`);
    const r = await runUntil(['run', '-c', cfg, '-c', over], new RegExp(`127\\.0\\.0\\.1:${port}`), { MYELIN_LOG_LEVEL: 'info' });
    expect(r.output).toMatch(new RegExp(`serving layers\\.test on http://127\\.0\\.0\\.1:${port}`));
    expect(r.output).toMatch(/unknown config keys: some_future_key/);
  });

  it('serves HTTPS on listeners with tls: true', async () => {
    const d = tmp();
    const cfg = join(d, 'homeserver.yaml');
    const port = await freePort();
    await runCli(['generate-config', '--server-name', 'tls.test', '--config-path', cfg, '--data-dir', d, '--port', String(port)]);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(d, 'key.pem'), '-out', join(d, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const over = join(d, 'tls.yaml');
    writeFileSync(over, `tls_certificate_path: cert.pem\ntls_private_key_path: key.pem\nlisteners:\n  - port: ${port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: true\n    resources: [{names: [client]}]\n`);
    const p = spawn(process.execPath, [BIN, 'run', '-c', cfg, '-c', over], { cwd: ROOT, stdio: 'ignore', env: { ...process.env, MYELIN_LOG_LEVEL: 'warn' } });
    try {
      let body = '';
      for (let i = 0; i < 100 && !body; i++) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          body = execFileSync('curl', ['-sk', `https://127.0.0.1:${port}/_matrix/client/versions`], { encoding: 'utf8' });
        } catch {
          /* not up yet */
        }
      }
      expect(JSON.parse(body).versions).toContain('v1.1');
    } finally {
      p.kill('SIGTERM');
    }
  });

  it('refuses tls: true without a certificate', async () => {
    const d = tmp();
    const cfg = join(d, 'homeserver.yaml');
    await runCli(['generate-config', '--server-name', 'notls.test', '--config-path', cfg, '--data-dir', d]);
    const over = join(d, 'tls.yaml');
    writeFileSync(over, `listeners:\n  - port: 1\n    type: http\n    tls: true\n`);
    const r = await runCli(['run', '-c', cfg, '-c', over]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tls_certificate_path/);
  });
});

describe('myelin start (what npm start runs)', () => {
  it('generates a data directory on first run and explains how to go on', async () => {
    const d = tmp();
    const dataDir = join(d, 'data');
    const port = await freePort();
    const first = await runUntil(['start', '--data-dir', dataDir, '--port', String(port)], /create a user:/, { MYELIN_SERVER_NAME: 'fresh.test' }, d);
    expect(first.output).toMatch(/Generated a new configuration/);
    expect(first.output).toMatch(new RegExp(`client URL:\\s+http://127\\.0\\.0\\.1:${port}`));
    expect(first.output).toMatch(/config:\s+.*data\/homeserver\.yaml/);
    expect(first.output).toMatch(/register-user -c .*homeserver\.yaml -u alice/);
    expect(readFileSync(join(dataDir, 'homeserver.yaml'), 'utf8')).toMatch(/server_name: "fresh.test"/);
    // Second run reuses what the first generated.
    const second = await runUntil(['start', '--data-dir', dataDir], /create a user:/, {}, d);
    expect(second.output).not.toMatch(/Generated a new configuration/);
    expect(second.output).toMatch(/serving fresh\.test/);
  });
});
