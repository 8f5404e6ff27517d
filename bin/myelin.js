#!/usr/bin/env node
// V8 heap settings first (src/cli/v8-flags.ts; MYELIN_V8_FLAGS overrides),
// then the CLI: the flags must be set before the server's code is loaded.
import { applyV8Flags } from '../dist/cli/v8-flags.js';

applyV8Flags();

const { main } = await import('../dist/cli/main.js');
main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
