import { describe, expect, it } from 'vitest';
import {
  hasLoneSurrogate,
  isCompliantHistoricalUserId,
  isValidEventId,
  isValidHistoricalUserId,
  isValidNamespacedId,
  isValidOpaqueId,
  isValidRoomAlias,
  isValidRoomId,
  isValidRoomIdOrAlias,
  isValidServerName,
  isValidUserId,
  isValidUserLocalpart,
  localpartOf,
  mapToUserLocalpart,
  parseHistoricalUserId,
  parseRoomAlias,
  parseRoomId,
  parseServerName,
  parseUserId,
  parseV1EventId,
  serverNameOf,
} from '../../../src/matrix/identifiers.js';

describe('server names', () => {
  it('accepts the spec examples', () => {
    expect(parseServerName('matrix.org')).toEqual({ host: 'matrix.org', kind: 'dns' });
    expect(parseServerName('matrix.org:8888')).toEqual({ host: 'matrix.org', port: 8888, kind: 'dns' });
    expect(parseServerName('1.2.3.4')).toEqual({ host: '1.2.3.4', kind: 'ipv4' });
    expect(parseServerName('1.2.3.4:1234')).toEqual({ host: '1.2.3.4', port: 1234, kind: 'ipv4' });
    expect(parseServerName('[1234:5678::abcd]')).toEqual({ host: '[1234:5678::abcd]', kind: 'ipv6' });
    expect(parseServerName('[1234:5678::abcd]:5678')).toEqual({ host: '[1234:5678::abcd]', port: 5678, kind: 'ipv6' });
  });
  it('accepts other valid forms', () => {
    for (const s of ['localhost', 'localhost:8008', '[::1]', '[::1]:8448', '[::ffff:1.2.3.4]', 'MATRIX.ORG', 'a-b.c', 'x:0', 'x:65535', '0.0.0.0', '255.255.255.255', 'a'.repeat(255)]) {
      expect(isValidServerName(s), s).toBe(true);
    }
  });
  it('rejects invalid forms', () => {
    for (const s of [
      '', ':80', 'matrix.org:', 'matrix.org:abc', 'matrix.org:123456', 'matrix.org:65536', 'matrix.org:-1',
      'matr_ix.org', 'matrix org', 'mätrix.org', 'a'.repeat(256), '256.1.1.1', '1.2.3.999',
      '[::1', '[::1]x', '[::1]:', '[1:2:3]', '[gggg::1]', '[]', '[:]', '::1', '[::1]:99999', 'host:80:80', '@x',
    ]) {
      expect(isValidServerName(s), s).toBe(false);
    }
  });
});

describe('user IDs', () => {
  it('accepts the current grammar', () => {
    expect(parseUserId('@alice:example.org')).toEqual({ sigil: '@', localpart: 'alice', domain: 'example.org' });
    expect(parseUserId('@a.b_c=d-e/f+g0:[::1]:8448')).toEqual({ sigil: '@', localpart: 'a.b_c=d-e/f+g0', domain: '[::1]:8448' });
    expect(isValidUserLocalpart('abc_123')).toBe(true);
  });
  it('rejects upper case, other punctuation, empty localpart, bad domains', () => {
    for (const s of ['@Alice:example.org', '@a*b:example.org', '@:example.org', '@a b:example.org', '@é:example.org', 'alice:example.org', '@alice', '@alice:', '@alice:bad_domain', '#alice:example.org', '@a!:x']) {
      expect(isValidUserId(s), s).toBe(false);
    }
    expect(isValidUserLocalpart('')).toBe(false);
  });
  it('limits the whole ID to 255 bytes', () => {
    const domain = 'example.org';
    const maxLocal = 255 - 2 - domain.length;
    expect(isValidUserId(`@${'a'.repeat(maxLocal)}:${domain}`)).toBe(true);
    expect(isValidUserId(`@${'a'.repeat(maxLocal + 1)}:${domain}`)).toBe(false);
  });
  it('accepts historical IDs where the spec requires it', () => {
    for (const s of ['@Alice:example.org', '@:example.org', '@a b*c:example.org', '@日本:example.org', '@\u0001x:example.org', '@😀:example.org']) {
      expect(isValidHistoricalUserId(s), s).toBe(true);
      expect(isValidUserId(s), s).toBe(false);
    }
    expect(parseHistoricalUserId('@Bob:example.org:8448')).toEqual({ sigil: '@', localpart: 'Bob', domain: 'example.org:8448' });
  });
  it('historical IDs still exclude NUL and lone surrogates, and are byte-limited', () => {
    expect(isValidHistoricalUserId('@a\u0000b:example.org')).toBe(false);
    expect(isValidHistoricalUserId('@a\uD800b:example.org')).toBe(false);
    // '@' + 84 x 3-byte chars + ':x' = 255 bytes (though only 87 UTF-16 units)
    expect(isValidHistoricalUserId(`@${'日'.repeat(84)}:x`)).toBe(true);
    expect(isValidHistoricalUserId(`@${'日'.repeat(85)}:x`)).toBe(false);
    expect(isValidHistoricalUserId(`@${'日'.repeat(84)}`)).toBe(false);
  });
  it('flags non-compliant historical IDs', () => {
    expect(isCompliantHistoricalUserId('@Alice:example.org')).toBe(true);
    expect(isCompliantHistoricalUserId('@:example.org')).toBe(false);
    expect(isCompliantHistoricalUserId('@a b:example.org')).toBe(false);
    expect(isCompliantHistoricalUserId('@é:example.org')).toBe(false);
  });
});

describe('room IDs and aliases', () => {
  it('parses room IDs', () => {
    expect(parseRoomId('!abcDEF123:example.org:8448')).toEqual({ sigil: '!', localpart: 'abcDEF123', domain: 'example.org:8448' });
    expect(isValidRoomId('!any thing/ok:example.org')).toBe(true);
    for (const s of ['!:example.org', '!abc', '!abc:', '#abc:example.org', 'abc:example.org', '!a\u0000:x', `!${'a'.repeat(250)}:example.org`]) {
      expect(isValidRoomId(s), s).toBe(false);
    }
  });
  it('parses aliases', () => {
    expect(parseRoomAlias('#room:example.org')).toEqual({ sigil: '#', localpart: 'room', domain: 'example.org' });
    expect(isValidRoomAlias('#Räume:example.org')).toBe(true);
    for (const s of ['#:example.org', '#room', '#room:', '!room:example.org', '#ro\u0000om:x']) {
      expect(isValidRoomAlias(s), s).toBe(false);
    }
    expect(isValidRoomIdOrAlias('#a:b')).toBe(true);
    expect(isValidRoomIdOrAlias('!a:b')).toBe(true);
    expect(isValidRoomIdOrAlias('@a:b')).toBe(false);
  });
});

describe('event IDs', () => {
  const hash = 'Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg';
  const std = 'acR1l3aG+5UgWKDsFO/Qs0L4AYwTqrs32cI8YqlSDuQ';
  it('validates v1 ids', () => {
    expect(parseV1EventId('$abc:example.org')).toEqual({ sigil: '$', localpart: 'abc', domain: 'example.org' });
    expect(isValidEventId('$abc:example.org', 'v1')).toBe(true);
    expect(isValidEventId('$:example.org', 'v1')).toBe(false);
    expect(isValidEventId(`$${hash}`, 'v1')).toBe(false);
  });
  it('validates v3 and v4 hash ids', () => {
    expect(isValidEventId(`$${std}`, 'v3')).toBe(true);
    expect(isValidEventId(`$${std}`, 'v4')).toBe(false);
    expect(isValidEventId(`$${hash}`, 'v4')).toBe(true); // the spec's example
    expect(isValidEventId(`$${hash}`, 'v3')).toBe(false);
    expect(isValidEventId(`$${hash.slice(1)}`, 'v4')).toBe(false);
    expect(isValidEventId(`$${hash}=`, 'v4')).toBe(false);
  });
  it('accepts any format without one, and rejects non-ids', () => {
    for (const s of [`$${hash}`, `$${std}`, '$x:example.org']) expect(isValidEventId(s), s).toBe(true);
    for (const s of ['', '$', 'abc', '!x:example.org', '$short', `$${'a'.repeat(250)}:example.org`]) expect(isValidEventId(s), s).toBe(false);
  });
});

describe('serverNameOf / localpartOf', () => {
  it('extracts the domain of every sigil that has one', () => {
    expect(serverNameOf('@alice:example.org')).toBe('example.org');
    expect(serverNameOf('@Alice:example.org:8448')).toBe('example.org:8448');
    expect(serverNameOf('!r:[::1]:80')).toBe('[::1]:80');
    expect(serverNameOf('#a:b.c')).toBe('b.c');
    expect(serverNameOf('$e:b.c')).toBe('b.c');
  });
  it('is undefined when there is none or it is malformed', () => {
    for (const s of ['$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg', 'example.org', '@alice', '@alice:bad domain', '%a:b', '']) {
      expect(serverNameOf(s), s).toBeUndefined();
    }
  });
  it('localpartOf', () => {
    expect(localpartOf('@alice:example.org')).toBe('alice');
    expect(localpartOf('@alice')).toBeUndefined();
  });
});

describe('other grammars', () => {
  it('namespaced ids', () => {
    for (const s of ['m.login.password', 'com.example.x', 'a', 'a-b_c.1']) expect(isValidNamespacedId(s), s).toBe(true);
    for (const s of ['', 'M.x', '1abc', '.a', 'a b', 'a'.repeat(256)]) expect(isValidNamespacedId(s), s).toBe(false);
  });
  it('opaque ids', () => {
    expect(isValidOpaqueId('AbC-._~09')).toBe(true);
    expect(isValidOpaqueId('a'.repeat(255))).toBe(true);
    expect(isValidOpaqueId('a'.repeat(256))).toBe(false);
    expect(isValidOpaqueId('a'.repeat(300), 500)).toBe(true);
    expect(isValidOpaqueId('')).toBe(false);
    expect(isValidOpaqueId('a/b')).toBe(false);
  });
  it('lone surrogates', () => {
    expect(hasLoneSurrogate('a\uD800')).toBe(true);
    expect(hasLoneSurrogate('\uDC00a')).toBe(true);
    expect(hasLoneSurrogate('😀')).toBe(false);
  });
  it('maps arbitrary names onto the localpart grammar as the spec suggests', () => {
    expect(mapToUserLocalpart('Alice')).toBe('alice');
    expect(mapToUserLocalpart('a#b')).toBe('a=23b');
    expect(mapToUserLocalpart('á')).toBe('=c3=a1');
    expect(mapToUserLocalpart('x=y')).toBe('x=3dy');
    expect(isValidUserLocalpart(mapToUserLocalpart('Ünïcode Name!'))).toBe(true);
  });
});
