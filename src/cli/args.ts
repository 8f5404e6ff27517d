/** Minimal flag parsing for the CLI: --flag value, -f value, --bool, repeatable flags. */
export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string[]>;
}

export function parseArgs(argv: string[], booleanFlags: string[] = []): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-') && a.length > 1) {
      let name = a.replace(/^-+/, '');
      let value: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.slice(eq + 1);
        name = name.slice(0, eq);
      } else if (booleanFlags.includes(name)) {
        value = 'true';
      } else {
        value = argv[++i];
        if (value === undefined) throw new Error(`${a} needs a value`);
      }
      const list = flags.get(name) ?? [];
      list.push(value);
      flags.set(name, list);
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

export function flag(args: ParsedArgs, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = args.flags.get(n);
    if (v?.length) return v[v.length - 1];
  }
  return undefined;
}

export function flagAll(args: ParsedArgs, ...names: string[]): string[] {
  return names.flatMap((n) => args.flags.get(n) ?? []);
}
