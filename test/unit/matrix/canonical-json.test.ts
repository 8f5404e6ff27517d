import { describe, expect, it } from 'vitest';
import {
  assertStrictCanonical,
  CanonicalJsonError,
  canonicalJson,
  canonicalJsonBytes,
  isStrictCanonical,
  sortedKeys,
} from '../../../src/matrix/canonical-json.js';

describe('canonical JSON: spec examples (appendices)', () => {
  const cases: [string, string][] = [
    ['{}', '{}'],
    ['{\n "one": 1,\n "two": "Two"\n}', '{"one":1,"two":"Two"}'],
    ['{\n "b": "2",\n "a": "1"\n}', '{"a":"1","b":"2"}'],
    ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
    [
      `{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ],
    ['{"a": "日本語"}', '{"a":"日本語"}'],
    ['{"本": 2, "日": 1}', '{"日":1,"本":2}'],
    ['{"a": "\\u65E5"}', '{"a":"日"}'],
    ['{"a": null}', '{"a":null}'],
    ['{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'],
  ];
  for (const [input, expected] of cases) {
    it(`${input.replace(/\s+/g, ' ').slice(0, 40)} -> ${expected.slice(0, 40)}`, () => {
      expect(canonicalJson(JSON.parse(input))).toBe(expected);
    });
  }
});

describe('canonical JSON: escaping follows the grammar', () => {
  it('uses short escapes where defined and \\u00XX lower-case hex otherwise', () => {
    expect(canonicalJson('\b\t\n\f\r"\\')).toBe('"\\b\\t\\n\\f\\r\\"\\\\"');
    expect(canonicalJson('\u0000\u0001\u001f\u000b\u000e')).toBe('"\\u0000\\u0001\\u001f\\u000b\\u000e"');
  });
  it('leaves /, DEL, non-ASCII and astral characters raw', () => {
    expect(canonicalJson('a/b\u007fé\u2028😀')).toBe('"a/b\u007fé\u2028😀"');
  });
  it('produces UTF-8 bytes', () => {
    expect(canonicalJsonBytes({ a: 'é' })).toEqual(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]));
  });
});

describe('canonical JSON: key order is by code point', () => {
  it('sorts nested objects and keeps array order', () => {
    expect(canonicalJson({ b: [3, 1, { z: 1, a: 2 }], a: { d: 1, c: 2 } })).toBe('{"a":{"c":2,"d":1},"b":[3,1,{"a":2,"z":1}]}');
  });
  it('orders astral code points after U+E000..U+FFFF (unlike UTF-16 order)', () => {
    // '😀' is U+1F600 (UTF-16 D83D DE00) and '\uFF21' is U+FF21: code point order puts FF21 first.
    expect(sortedKeys({ '😀': 1, '\uFF21': 2, a: 3 })).toEqual(['a', '\uFF21', '😀']);
    expect(canonicalJson({ '😀': 1, '\uFF21': 2 })).toBe('{"\uFF21":2,"😀":1}');
  });
  it('sorts upper case before lower case (byte order)', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, _: 4 })).toBe('{"B":2,"_":4,"a":3,"b":1}');
  });
});

describe('canonical JSON: numbers', () => {
  it('accepts the boundary integers', () => {
    expect(canonicalJson(2 ** 53 - 1, { strict: true })).toBe('9007199254740991');
    expect(canonicalJson(-(2 ** 53) + 1, { strict: true })).toBe('-9007199254740991');
  });
  it('strict mode rejects out-of-range integers and floats', () => {
    expect(() => canonicalJson(2 ** 53, { strict: true })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(-(2 ** 53), { strict: true })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: [1.5] }, { strict: true })).toThrow(/float not allowed at a\.0/);
  });
  it('lenient mode (room v1-5) encodes them without exponents', () => {
    expect(canonicalJson(1e21)).toBe('1000000000000000000000');
    expect(canonicalJson(2 ** 53)).toBe('9007199254740992');
    expect(canonicalJson(1.5)).toBe('1.5');
  });
  it('rejects non-finite numbers and non-JSON values always', () => {
    expect(() => canonicalJson(NaN)).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: Infinity })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: () => 1 })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: 1n })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: new Map() })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(undefined)).toThrow(CanonicalJsonError);
  });
  it('omits undefined properties like JSON.stringify', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonicalJson([undefined])).toBe('[null]');
  });
});

describe('assertStrictCanonical', () => {
  it('accepts valid documents', () => {
    expect(() => assertStrictCanonical({ a: [1, -2, 'x', null, true, { b: 9007199254740991 }] })).not.toThrow();
    expect(isStrictCanonical({ a: 1 })).toBe(true);
  });
  it('rejects floats and out-of-range integers anywhere, naming the path', () => {
    expect(() => assertStrictCanonical({ content: { n: 0.5 } })).toThrow(/content\.n/);
    expect(() => assertStrictCanonical({ x: [0, 2 ** 60] })).toThrow(/x\.1/);
    expect(isStrictCanonical({ depth: 1.1 })).toBe(false);
    expect(isStrictCanonical({ depth: Number.MAX_SAFE_INTEGER + 2 })).toBe(false);
  });
});

describe('canonical JSON: the fast encoder agrees with the general one', () => {
  // The general encoder, reached through values the fast path hands over (an
  // object with another prototype at the top), is the reference.
  const general = (v: unknown): string => {
    class Wrapper {
      constructor(readonly v: unknown) {}
    }
    const text = canonicalJson(new Wrapper(v));
    return text.slice('{"v":'.length, -1);
  };
  const values: unknown[] = [
    { b: 1, a: [1, 'x', null, true, false, { d: {}, c: [] }], '': 0, A: -0 },
    { 'q"uote': 1, 'back\\slash': 2, 'ctl\u0001': 3, nl: 'a\nb', tab: '\t', del: '\u007f', eacute: 'é' },
    { '\u{1F600}': 1, '\uFFFD': 2, z: 3 },
    { lone: '\ud800', pair: '\u{1F600}', [String.fromCharCode(0xdc00)]: 1 },
    { n: [0, -1, 2 ** 53 - 1, -(2 ** 53) + 1] },
    Object.assign(Object.create(null), { b: 2, a: 1 }),
    { undef: undefined, arr: [undefined, 1], k: Array.from({ length: 20 }, (_, i) => i) },
    Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${(i * 7) % 30}`, i])),
  ];
  for (const [i, v] of values.entries()) {
    it(`value #${i}`, () => {
      expect(canonicalJson(v)).toBe(general(v));
    });
  }
  it('hands numbers outside the safe integers to the general encoder', () => {
    expect(canonicalJson({ f: 1.5, big: 2 ** 60 })).toBe('{"big":1152921504606846976,"f":1.5}');
    expect(() => canonicalJson({ a: { f: 1.5 } }, { strict: true })).toThrow(/a\.f/);
  });
  it('hands non-plain objects inside to the general encoder (errors keep their path)', () => {
    expect(() => canonicalJson({ a: [{ m: new Map() }] })).toThrow(/a\.0\.m/);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(CanonicalJsonError);
    class Point {
      x = 1;
      y = 2;
    }
    expect(canonicalJson({ p: new Point() })).toBe('{"p":{"x":1,"y":2}}');
  });
});
