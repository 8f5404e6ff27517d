/**
 * The `myelin` command line: generate-config, run, start, register-user.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startHomeserver } from '../app/homeserver.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { flag, flagAll, parseArgs } from './args.js';
import { generateConfig } from './generate-config.js';
import { proxyConfig } from './proxy-config.js';
import { clientUrlOf, registerUser } from './register-user.js';
import { serverStarted } from './v8-flags.js';

const USAGE = `usage: myelin <command> [options]

commands:
  generate-config --server-name NAME --config-path FILE [--data-dir DIR] [--port N]
      write a new homeserver.yaml, signing key and registration secret
  run -c FILE [-c FILE ...]
      run the homeserver (later files override earlier ones)
  start [--server-name NAME] [--data-dir DIR] [--port N]
      first run: generate DIR/homeserver.yaml (default ./data, server name
      localhost or $MYELIN_SERVER_NAME); then run it
  proxy-config --nginx -c FILE [-a WORKERS_DIR] [-w WORKER.yaml] [--pool POOL=w1,w2] [--listen PORT]
      print an nginx configuration for a worker deployment (docs/workers.md)
  register-user -c FILE -u NAME -p PASSWORD [--admin]
      create a user through the running server's shared-secret admin API
`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'generate-config': {
      const a = parseArgs(rest);
      const serverName = flag(a, 'server-name', 'H');
      const configPath = flag(a, 'config-path', 'c');
      if (!serverName || !configPath) throw new Error('generate-config needs --server-name and --config-path\n\n' + USAGE);
      const port = flag(a, 'port', 'p');
      const out = generateConfig({ serverName, configPath, dataDir: flag(a, 'data-dir'), port: port ? parsePort(port) : undefined });
      console.log(`wrote ${out.configPath} and signing key ${out.signingKeyPath}`);
      return;
    }
    case 'run': {
      const a = parseArgs(rest);
      await run(flagAll(a, 'c', 'config-path', 'config'));
      return;
    }
    case 'start': {
      const a = parseArgs(rest);
      const dataDir = resolve(flag(a, 'data-dir') ?? process.env.MYELIN_DATA_DIR ?? 'data');
      const configPath = join(dataDir, 'homeserver.yaml');
      if (!existsSync(configPath)) {
        const serverName = flag(a, 'server-name') ?? process.env.MYELIN_SERVER_NAME ?? 'localhost';
        const port = flag(a, 'port') ?? process.env.MYELIN_PORT;
        generateConfig({ serverName, configPath, dataDir, port: port ? parsePort(port) : undefined });
        console.log(`Generated a new configuration in ${configPath}`);
      }
      await run([configPath], true);
      return;
    }
    case 'proxy-config': {
      const text = proxyConfig(rest);
      if (!rest.includes('-o') && !rest.includes('--output')) process.stdout.write(text);
      return;
    }
    case 'register-user': {
      const a = parseArgs(rest, ['admin', 'a', 'no-admin']);
      const config = loadConfig(flagAll(a, 'c', 'config-path', 'config'));
      const user = flag(a, 'u', 'user');
      const password = flag(a, 'p', 'password');
      if (!user || !password) throw new Error('register-user needs -u NAME and -p PASSWORD');
      if (!config.registration_shared_secret) throw new Error('registration_shared_secret is not set in the configuration');
      const url = flag(a, 'url') ?? clientUrlOf(config);
      const admin = a.flags.has('admin') || a.flags.has('a');
      const out = await registerUser(url, config.registration_shared_secret, user, password, admin);
      console.log(`registered ${out.user_id}${admin ? ' (admin)' : ''}`);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      throw new Error(`unknown command ${command}\n\n${USAGE}`);
  }
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port: ${v}`);
  return n;
}

async function run(configPaths: string[], explain = false): Promise<void> {
  let config;
  try {
    config = loadConfig(configPaths);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`myelin: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  const started = Date.now();
  const hs = await startHomeserver(config);
  // Start-up ran with a small young generation; from now on it may grow to its cap (v8-flags.ts).
  serverStarted();
  const name = hs.services.instanceName;
  console.log(`Myelin (${name}) serving ${config.server_name} on ${hs.urls.join(', ')} (started in ${Date.now() - started} ms)`);
  if (explain) {
    console.log(`  client URL:  ${hs.urls[0] ?? '(no listener)'}`);
    console.log(`  config:      ${config.configPaths.join(', ')}`);
    console.log(`  create a user: npx myelin register-user -c ${config.configPaths[0]} -u alice -p 'a password' [--admin]`);
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    hs.services.logger.info(`received ${sig}, shutting down`);
    const t = setTimeout(() => process.exit(1), 10_000);
    t.unref();
    await hs.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
