import { describe, expect, it } from 'vitest';
import { ArgError, DEFAULTS, parseArgs, SCENARIOS } from '../../../src/bench/args.js';
import { makeRunId, Rng } from '../../../src/bench/rng.js';

const parse = (...a: string[]) => parseArgs(a, () => 'RANDOM');

describe('parseArgs', () => {
  it('applies defaults', () => {
    const o = parse('--base-url', 'http://127.0.0.1:8008/')!;
    expect(o).toMatchObject({
      baseUrl: 'http://127.0.0.1:8008',
      users: DEFAULTS.users,
      rooms: DEFAULTS.rooms,
      durationS: DEFAULTS.durationS,
      concurrency: DEFAULTS.concurrency,
      rounds: 1,
      seed: 'RANDOM',
      pids: [],
      quiet: false,
    });
    expect(o.scenarios).toEqual([...SCENARIOS]);
    expect(o.sharedSecret).toBeUndefined();
  });

  it('reads every flag, in both --k v and --k=v forms; --pid repeats', () => {
    const o = parse(
      '--base-url=https://hs.example/base',
      '--shared-secret', 's3cret',
      '--users', '20', '--rooms=3', '--duration', '2.5', '--concurrency', '8',
      '--seed', 'abc', '--scenario', 'send,delivery', '--pid', '11', '--pid=12,13', '--pid', '11',
      '--rounds', '3', '--json', 'out.json', '--events', '5', '--history', '50',
      '--max-events', '100', '--drain', '3', '--delivery-rate', '0', '--delivery-receivers', '7', '--send-rate', '300', '--quiet',
    )!;
    expect(o).toMatchObject({
      baseUrl: 'https://hs.example/base',
      sharedSecret: 's3cret',
      users: 20, rooms: 3, durationS: 2.5, concurrency: 8, seed: 'abc',
      scenarios: ['send', 'delivery'], pids: [11, 12, 13], rounds: 3, jsonFile: 'out.json',
      events: 5, history: 50, maxEvents: 100, drainS: 3, deliveryRate: 0, deliveryReceivers: 7, sendRate: 300, quiet: true,
    });
  });

  it('delivery defaults to the paced 10 receivers at 20 events/s and rejects bad values', () => {
    const o = parse('--base-url', 'http://x')!;
    expect(o.deliveryRate).toBe(20);
    expect(o.deliveryReceivers).toBe(10);
    expect(() => parse('--base-url', 'http://x', '--delivery-rate', '-1')).toThrow(/delivery-rate/);
    expect(() => parse('--base-url', 'http://x', '--delivery-receivers', 'x')).toThrow(/delivery-receivers/);
  });

  it('--warmup takes seconds, 0 by default', () => {
    expect(parse('--base-url', 'http://x')!.warmupS).toBe(0);
    expect(parse('--base-url', 'http://x', '--warmup', '30')!.warmupS).toBe(30);
    expect(parse('--base-url', 'http://x', '--warmup=0')!.warmupS).toBe(0);
    expect(() => parse('--base-url', 'http://x', '--warmup', '-2')).toThrow(/warmup/);
    expect(() => parse('--base-url', 'http://x', '--warmup', 'soon')).toThrow(/warmup/);
  });

  it('send is closed-loop unless --send-rate paces it', () => {
    expect(parse('--base-url', 'http://x')!.sendRate).toBe(0);
    expect(parse('--base-url', 'http://x', '--send-rate=250')!.sendRate).toBe(250);
    expect(() => parse('--base-url', 'http://x', '--send-rate', '1.5')).toThrow(/send-rate/);
  });

  it('--scenario all and dedup', () => {
    expect(parse('--base-url', 'http://x', '--scenario', 'whoami,all')!.scenarios).toEqual([...SCENARIOS]);
    expect(parse('--base-url', 'http://x', '--scenario', 'joins,joins')!.scenarios).toEqual(['joins']);
  });

  it('--help returns null', () => {
    expect(parse('--help')).toBeNull();
  });

  it.each([
    [[], /--base-url is required/],
    [['--base-url', 'ftp://x'], /http/],
    [['--base-url', 'not a url'], /not a URL/],
    [['--base-url', 'http://x', '--users', '0'], /at least 1/],
    [['--base-url', 'http://x', '--users', '2x'], /whole number/],
    [['--base-url', 'http://x', '--duration', '-1'], /positive/],
    [['--base-url', 'http://x', '--scenario', 'nope'], /unknown scenario "nope"/],
    [['--base-url', 'http://x', '--bogus', '1'], /unknown flag --bogus/],
    [['--base-url', 'http://x', '--users'], /needs a value/],
    [['--base-url', 'http://x', '--users', '--rooms', '2'], /needs a value/],
    [['--base-url', 'http://x', '--rooms', '1', '--rooms', '2'], /given twice/],
    [['--base-url', 'http://x', 'stray'], /unexpected argument/],
    [['--base-url', 'http://x', '--quiet=yes'], /takes no value/],
    [['--base-url', 'http://x', '--users', '1', '--scenario', 'joins'], /at least 2/],
  ])('rejects %j', (argv, msg) => {
    expect(() => parse(...(argv as string[]))).toThrow(ArgError);
    expect(() => parse(...(argv as string[]))).toThrow(msg as RegExp);
  });
});

describe('seeded generator and run id', () => {
  it('repeats for a seed and differs across seeds', () => {
    const a = new Rng('s');
    const b = new Rng('s');
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(new Rng('t').next()).not.toBe(xs[0]);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });
  it('run ids are valid localpart prefixes, stable per (seed, salt)', () => {
    const id = makeRunId('seed', '1');
    expect(id).toMatch(/^b[0-9a-z]{7}$/);
    expect(makeRunId('seed', '1')).toBe(id);
    expect(makeRunId('seed', '2')).not.toBe(id);
  });
});
