import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hasMallocSettings, LAUNCH_MALLOC_ENV, LAUNCH_NODE_ARGS, launchEnv, launchNodeArgs } from '../../../src/cli/launch-env.js';

describe('launchEnv', () => {
  it('adds fixed malloc thresholds to the environment', () => {
    const env = launchEnv({ PATH: '/bin', MYELIN_LOG_LEVEL: 'warn' });
    expect(env).toEqual({ PATH: '/bin', MYELIN_LOG_LEVEL: 'warn', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' });
    expect(LAUNCH_MALLOC_ENV).toEqual({ MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' });
  });

  it('does not change the environment it is given', () => {
    const given = { PATH: '/bin' };
    launchEnv(given);
    expect(given).toEqual({ PATH: '/bin' });
  });

  it('adds nothing when the environment chooses a malloc setting itself', () => {
    for (const own of [{ MALLOC_ARENA_MAX: '2' }, { MALLOC_MMAP_THRESHOLD_: '65536' }, { MALLOC_TOP_PAD_: '0' }, { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=0' }, { GLIBC_TUNABLES: 'glibc.rtld.nns=2:glibc.malloc.arena_max=1' }]) {
      expect(hasMallocSettings(own)).toBe(true);
      expect(launchEnv({ PATH: '/bin', ...own })).toEqual({ PATH: '/bin', ...own });
    }
  });

  it('other tunables and look-alike names are not malloc settings', () => {
    expect(hasMallocSettings({ GLIBC_TUNABLES: 'glibc.rtld.nns=2', MALLOC: 'x', MYMALLOC_ARENA_MAX: '1', MALLOC_CHECK: '3' })).toBe(false);
  });

});

describe('the systemd units', () => {
  const units = ['myelin.service', 'myelin-worker@.service'].map((f) => readFileSync(new URL(`../../../contrib/systemd/${f}`, import.meta.url), 'utf8'));

  it('set what myelinctl sets', () => {
    for (const unit of units) {
      const assignments = unit
        .split('\n')
        .filter((l) => l.startsWith('Environment='))
        .flatMap((l) => l.slice('Environment='.length).split(' '));
      for (const [k, v] of Object.entries(LAUNCH_MALLOC_ENV)) expect(assignments).toContain(`${k}=${v}`);
      expect(assignments).toContain(`NODE_OPTIONS=${LAUNCH_NODE_ARGS.join(' ')}`);
    }
  });

  it('node takes the pool size from NODE_OPTIONS, and it leaves fewer threads', () => {
    const threads = (nodeOptions: string) => {
      const r = spawnSync(process.execPath, ['-e', "console.log(require('fs').readdirSync('/proc/self/task').length)"], {
        env: { ...process.env, NODE_OPTIONS: nodeOptions },
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      return Number(r.stdout.trim());
    };
    expect(threads(LAUNCH_NODE_ARGS.join(' '))).toBeLessThan(threads('--v8-pool-size=4'));
  });
});

describe('launchNodeArgs', () => {
  it('gives V8 one background thread', () => {
    expect(LAUNCH_NODE_ARGS).toEqual(['--v8-pool-size=1']);
    expect(launchNodeArgs({})).toEqual(['--v8-pool-size=1']);
    expect(launchNodeArgs({ NODE_OPTIONS: '--enable-source-maps' })).toEqual(['--v8-pool-size=1']);
  });

  it('stands down when NODE_OPTIONS sets the pool size', () => {
    expect(launchNodeArgs({ NODE_OPTIONS: '--v8-pool-size=4' })).toEqual([]);
    expect(launchNodeArgs({ NODE_OPTIONS: '--inspect  --v8_pool_size=2' })).toEqual([]);
  });

  it('node accepts the options', () => {
    const r = spawnSync(process.execPath, [...launchNodeArgs({}), '-e', 'console.log(process.execArgv[0])'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('--v8-pool-size=1');
  });
});
