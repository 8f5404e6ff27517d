// Regenerates spec-bodies.json (request-body field names and examples per
// client-server endpoint) from the Matrix OpenAPI definitions:
//   node test/e2e/robustness/gen-spec-bodies.mjs /path/to/matrix-spec/data
// The bad-input sweep uses it to know which fields each endpoint expects.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

if (!process.argv[2]) {
  console.error('usage: node test/e2e/robustness/gen-spec-bodies.mjs test/fixtures/matrix-spec/data');
  process.exit(2);
}
const data = resolve(process.argv[2]);
const cache = new Map();
const load = (f) => (cache.has(f) ? cache.get(f) : (cache.set(f, parse(readFileSync(f, 'utf8'))), cache.get(f)));

function deref(node, file, depth = 0) {
  if (depth > 8 || node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    const [rel, frag] = node.$ref.split('#');
    const target = rel ? resolve(dirname(file), rel) : file;
    let v = load(target);
    for (const part of (frag ?? '').split('/').filter(Boolean)) v = v?.[part];
    return deref(v, target, depth + 1);
  }
  if (Array.isArray(node.allOf)) {
    const out = { properties: {}, required: [] };
    for (const part of node.allOf) {
      const p = deref(part, file, depth + 1) ?? {};
      Object.assign(out.properties, p.properties ?? {});
      out.required.push(...(p.required ?? []));
      if (p.example) out.example = { ...(out.example ?? {}), ...p.example };
    }
    return out;
  }
  return node;
}

const out = {};
const dir = join(data, 'api/client-server');
for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
  const file = join(dir, name);
  const doc = load(file);
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(ops ?? {})) {
      const rb = op?.requestBody?.content?.['application/json'];
      if (!rb) continue;
      const schema = deref(rb.schema, file) ?? {};
      const example = rb.example ?? rb.examples?.request?.value ?? schema.example;
      const key = `${method.toUpperCase()} ${path.trim().replace(/\{[^}]+\}/g, '{}')}`;
      // One path can have several operations (e.g. both kinds of invite): merge them.
      const prev = out[key] ?? { fields: [], required: [] };
      out[key] = {
        fields: [...new Set([...prev.fields, ...Object.keys(schema.properties ?? {})])],
        required: prev.required.length ? prev.required : schema.required ?? [],
        ...(prev.example ? { example: prev.example } : example && typeof example === 'object' && !Array.isArray(example) ? { example } : {}),
      };
    }
  }
}
writeFileSync(new URL('./spec-bodies.json', import.meta.url), JSON.stringify(out, null, 1) + '\n');
console.log(Object.keys(out).length, 'endpoints');
