/**
 * `npm run bench -- --base-url URL ...` — the load generator's entry point.
 * Exit codes: 0 all scenarios passed their checks; 1 a scenario's
 * correctness check failed (events missing/duplicated, request errors);
 * 2 bad arguments, or the target is unreachable or refuses registration.
 */
import { writeFileSync } from 'node:fs';
import { ArgError, parseArgs, USAGE } from './args.js';
import { toJson } from './report.js';
import { runBench, TargetError } from './runner.js';
import { runIfMain } from './util.js';

export async function main(argv: readonly string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (e instanceof ArgError) {
      console.error(`bench: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (!opts) {
    console.log(USAGE);
    return 0;
  }
  try {
    const report = await runBench(opts);
    if (opts.jsonFile) {
      writeFileSync(opts.jsonFile, toJson(report) + '\n');
      console.log(`figures written to ${opts.jsonFile}`);
    }
    if (!report.ok) {
      console.error(`bench: checks failed in: ${report.scenarios.filter((s) => !s.ok).map((s) => s.name).join(', ')}`);
      return 1;
    }
    return 0;
  } catch (e) {
    if (e instanceof TargetError) {
      console.error(`bench: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

// Run when executed directly (node dist/bench/main.js), not when imported.
runIfMain(import.meta.url, main);
