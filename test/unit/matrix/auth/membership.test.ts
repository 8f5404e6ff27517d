import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../../src/matrix/canonical-json.js';
import { ALICE, ALL_VERSIONS, BOB, CAROL, DAVE, newRoom } from './room-builder.js';

const EVE = '@eve:e.example';

describe('m.room.member basics', () => {
  it('rejects without membership or state_key', () => {
    const room = newRoom('10').standard();
    expect(room.check({ type: 'm.room.member', sender: BOB, state_key: BOB, content: {} }).allowed).toBe(false);
    expect(room.check({ type: 'm.room.member', sender: BOB, content: { membership: 'join' } }).allowed).toBe(false);
  });

  it('rejects unknown memberships', () => {
    const room = newRoom('10').standard();
    expect(room.check(room.member(BOB, BOB, 'wave')).allowed).toBe(false);
  });
});

describe('join', () => {
  it.each(ALL_VERSIONS)('v%s: public room: anyone may join, not on behalf of others', (v) => {
    const room = newRoom(v).standard('public');
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(true);
    expect(room.check(room.member(BOB, CAROL, 'join')).allowed).toBe(false);
  });

  it.each(ALL_VERSIONS)('v%s: invite-only room needs an invite (or existing join)', (v) => {
    const room = newRoom(v).standard('invite');
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(false);
    room.add(room.member(ALICE, BOB, 'invite'));
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(true);
    room.join(BOB);
    // re-join (e.g. profile change) while joined
    expect(room.check(room.member(BOB, BOB, 'join', { displayname: 'Bob' })).allowed).toBe(true);
  });

  it('banned users cannot join even a public room', () => {
    const room = newRoom('10').standard('public');
    room.join(BOB);
    room.add(room.member(ALICE, BOB, 'ban'));
    expect(room.check(room.member(BOB, BOB, 'join'))).toMatchObject({ allowed: false, reason: expect.stringMatching(/banned/) });
  });

  it('unknown join rule rejects', () => {
    const room = newRoom('10').standard('private');
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(false);
  });

  it('knock join rule behaves like invite for joins (v7+)', () => {
    const room = newRoom('7').standard('knock');
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(false);
    room.add(room.member(ALICE, BOB, 'invite'));
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(true);
    // v6 does not know the knock join rule: even invited users cannot join.
    const old = newRoom('6').standard('knock');
    old.add(old.member(ALICE, BOB, 'invite'));
    expect(old.check(old.member(BOB, BOB, 'join')).allowed).toBe(false);
  });
});

describe('restricted joins', () => {
  function restricted(v: string, rule = 'restricted') {
    const room = newRoom(v);
    room.create(ALICE);
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100 }, invite: 50 });
    room.joinRules(ALICE, rule, { allow: [{ type: 'm.room_membership', room_id: '!space:a.example' }] });
    return room;
  }

  it('v8: join authorised by a joined user who can invite', () => {
    const room = restricted('8');
    expect(room.check(room.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE })).allowed).toBe(true);
  });

  it('v7: restricted is an unknown join rule', () => {
    const room = restricted('7');
    expect(room.check(room.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE })).allowed).toBe(false);
  });

  it('v8: rejects without authoriser, with a non-joined authoriser, or one who cannot invite', () => {
    const room = restricted('8');
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(false);
    expect(room.check(room.member(BOB, BOB, 'join', { join_authorised_via_users_server: CAROL })).allowed).toBe(false);
    // DAVE is joined (via invite) but has level 0 < invite 50.
    room.add(room.member(ALICE, DAVE, 'invite'));
    room.join(DAVE);
    expect(room.check(room.member(BOB, BOB, 'join', { join_authorised_via_users_server: DAVE }))).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/invite/),
    });
  });

  it('v8: invited users join without an authoriser', () => {
    const room = restricted('8');
    room.add(room.member(ALICE, BOB, 'invite'));
    expect(room.check(room.member(BOB, BOB, 'join')).allowed).toBe(true);
  });

  it('signature of the authorising server is checked through the callback', () => {
    const room = restricted('9');
    const spec = room.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE });
    const seen: string[] = [];
    expect(room.check(spec, { isSignedByServer: (_e, s) => (seen.push(s), false) }).allowed).toBe(false);
    expect(seen).toEqual(['a.example']);
    expect(room.check(spec, { isSignedByServer: () => true }).allowed).toBe(true);
  });

  it('knock_restricted: v10 allows authorised joins and knocks, v9 rejects both', () => {
    const v10 = restricted('10', 'knock_restricted');
    expect(v10.check(v10.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE })).allowed).toBe(true);
    expect(v10.check(v10.member(BOB, BOB, 'knock')).allowed).toBe(true);
    const v9 = restricted('9', 'knock_restricted');
    expect(v9.check(v9.member(BOB, BOB, 'join', { join_authorised_via_users_server: ALICE })).allowed).toBe(false);
    expect(v9.check(v9.member(BOB, BOB, 'knock')).allowed).toBe(false);
  });
});

describe('invite', () => {
  it('joined sender with invite level may invite', () => {
    const room = newRoom('10').standard('invite');
    expect(room.check(room.member(ALICE, BOB, 'invite')).allowed).toBe(true);
  });

  it('non-joined sender cannot invite', () => {
    const room = newRoom('10').standard('public');
    expect(room.check(room.member(BOB, CAROL, 'invite')).allowed).toBe(false);
  });

  it('cannot invite joined or banned users', () => {
    const room = newRoom('10').standard('public');
    room.join(BOB);
    expect(room.check(room.member(ALICE, BOB, 'invite')).allowed).toBe(false);
    room.add(room.member(ALICE, BOB, 'ban'));
    expect(room.check(room.member(ALICE, BOB, 'invite')).allowed).toBe(false);
  });

  it('invite level is enforced', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100 }, invite: 20 });
    room.joinRules(ALICE, 'public');
    room.join(BOB);
    expect(room.check(room.member(BOB, CAROL, 'invite')).allowed).toBe(false);
  });
});

describe('leave / kick / unban', () => {
  it('self-leave allowed from join and invite, not from leave or ban', () => {
    const room = newRoom('10').standard('invite');
    room.add(room.member(ALICE, BOB, 'invite'));
    expect(room.check(room.member(BOB, BOB, 'leave')).allowed).toBe(true); // reject invite
    room.add(room.member(BOB, BOB, 'leave'));
    expect(room.check(room.member(BOB, BOB, 'leave')).allowed).toBe(false);
    expect(room.check(room.member(CAROL, CAROL, 'leave')).allowed).toBe(false); // never in room
  });

  it('leave from knock: v7+ only', () => {
    const room = newRoom('7').standard('knock');
    room.add(room.member(BOB, BOB, 'knock'));
    expect(room.check(room.member(BOB, BOB, 'leave')).allowed).toBe(true);
  });

  it('kick needs kick level and a higher level than the target', () => {
    const room = newRoom('10').standard('public', { [BOB]: 50, [CAROL]: 50 });
    room.join(BOB);
    room.join(CAROL);
    room.join(DAVE);
    expect(room.check(room.member(BOB, DAVE, 'leave')).allowed).toBe(true); // 50 ≥ kick 50, 0 < 50
    expect(room.check(room.member(BOB, CAROL, 'leave')).allowed).toBe(false); // equal level
    expect(room.check(room.member(DAVE, BOB, 'leave')).allowed).toBe(false); // DAVE has 0
    expect(room.check(room.member(ALICE, BOB, 'leave')).allowed).toBe(true);
  });

  it('non-joined sender cannot kick', () => {
    const room = newRoom('10').standard('public');
    room.join(BOB);
    expect(room.check(room.member(CAROL, BOB, 'leave')).allowed).toBe(false);
  });

  it('unban needs both ban and kick level', () => {
    const room = newRoom('10');
    room.create(ALICE);
    room.join(ALICE);
    room.powerLevels(ALICE, { users: { [ALICE]: 100, [BOB]: 60 }, ban: 70, kick: 50 });
    room.joinRules(ALICE, 'public');
    room.join(BOB);
    room.join(DAVE);
    room.add(room.member(ALICE, DAVE, 'ban'));
    expect(room.check(room.member(BOB, DAVE, 'leave'))).toMatchObject({ allowed: false, reason: expect.stringMatching(/unban/) });
    expect(room.check(room.member(ALICE, DAVE, 'leave')).allowed).toBe(true);
  });
});

describe('ban', () => {
  it('ban level and higher than target; sender must be joined', () => {
    const room = newRoom('10').standard('public', { [BOB]: 50 });
    room.join(BOB);
    room.join(DAVE);
    expect(room.check(room.member(BOB, DAVE, 'ban')).allowed).toBe(true);
    expect(room.check(room.member(BOB, ALICE, 'ban')).allowed).toBe(false);
    expect(room.check(room.member(DAVE, BOB, 'ban')).allowed).toBe(false);
    expect(room.check(room.member(CAROL, DAVE, 'ban')).allowed).toBe(false); // not joined
    // Banning someone who never joined is fine.
    expect(room.check(room.member(ALICE, EVE, 'ban')).allowed).toBe(true);
  });
});

describe('knock', () => {
  it('rejected in v6 (unknown membership), accepted in v7 with the knock join rule', () => {
    const v6 = newRoom('6').standard('knock');
    expect(v6.check(v6.member(BOB, BOB, 'knock')).allowed).toBe(false);
    const v7 = newRoom('7').standard('knock');
    expect(v7.check(v7.member(BOB, BOB, 'knock')).allowed).toBe(true);
  });

  it('v7: needs the knock join rule, own state_key, and not banned/invited/joined', () => {
    const pub = newRoom('7').standard('public');
    expect(pub.check(pub.member(BOB, BOB, 'knock')).allowed).toBe(false);
    const room = newRoom('7').standard('knock');
    expect(room.check(room.member(BOB, CAROL, 'knock')).allowed).toBe(false);
    room.add(room.member(ALICE, CAROL, 'invite'));
    expect(room.check(room.member(CAROL, CAROL, 'knock')).allowed).toBe(false);
    room.add(room.member(ALICE, DAVE, 'ban'));
    expect(room.check(room.member(DAVE, DAVE, 'knock')).allowed).toBe(false);
    expect(room.check(room.member(ALICE, ALICE, 'knock')).allowed).toBe(false);
    // A knock can be answered by an invite.
    room.add(room.member(BOB, BOB, 'knock'));
    expect(room.check(room.member(ALICE, BOB, 'invite')).allowed).toBe(true);
  });
});

describe('third-party invites', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const rawPub = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const pubB64 = rawPub.toString('base64').replace(/=+$/, '');
  const other = generateKeyPairSync('ed25519');

  function signedFor(mxid: string, token: string, key = privateKey) {
    const unsigned = { mxid, token, sender: ALICE };
    const sig = sign(null, Buffer.from(canonicalJson(unsigned)), key).toString('base64').replace(/=+$/, '');
    return { ...unsigned, signatures: { 'id.example': { 'ed25519:0': sig } } };
  }

  function roomWithTpi(v = '10', keyField: 'public_key' | 'public_keys' = 'public_key') {
    const room = newRoom(v).standard('invite');
    const content = keyField === 'public_key' ? { public_key: pubB64, display_name: 'b...' } : { public_keys: [{ public_key: 'AAAA' }, { public_key: pubB64.replace(/\+/g, '-').replace(/\//g, '_') }] };
    room.add({ type: 'm.room.third_party_invite', sender: ALICE, state_key: 'tok', content });
    return room;
  }

  it('valid signature from public_key allows the invite', () => {
    const room = roomWithTpi();
    const spec = room.member(ALICE, BOB, 'invite', { third_party_invite: { display_name: 'b', signed: signedFor(BOB, 'tok') } });
    expect(room.check(spec)).toEqual({ allowed: true });
  });

  it('valid signature from public_keys[] allows the invite (url-safe base64 key)', () => {
    const room = roomWithTpi('10', 'public_keys');
    const spec = room.member(ALICE, BOB, 'invite', { third_party_invite: { signed: signedFor(BOB, 'tok') } });
    expect(room.check(spec).allowed).toBe(true);
  });

  it('rejects bad signatures, wrong mxid, unknown token, other sender, banned target, missing fields', () => {
    const room = roomWithTpi();
    const inv = (sender: string, target: string, tpi: unknown) => room.check(room.member(sender, target, 'invite', { third_party_invite: tpi }));
    expect(inv(ALICE, BOB, { signed: signedFor(BOB, 'tok', other.privateKey) }).allowed).toBe(false);
    const tampered = { ...signedFor(BOB, 'tok'), extra: 1 };
    expect(inv(ALICE, BOB, { signed: tampered }).allowed).toBe(false);
    expect(inv(ALICE, CAROL, { signed: signedFor(BOB, 'tok') }).allowed).toBe(false);
    expect(inv(ALICE, BOB, { signed: signedFor(BOB, 'nope') }).allowed).toBe(false);
    expect(inv(ALICE, BOB, {}).allowed).toBe(false);
    expect(inv(ALICE, BOB, { signed: { mxid: BOB } }).allowed).toBe(false);
    room.add(room.member(ALICE, BOB, 'ban'));
    expect(inv(ALICE, BOB, { signed: signedFor(BOB, 'tok') })).toMatchObject({ allowed: false, reason: expect.stringMatching(/banned/) });
  });

  it('rejects when the sender did not send the m.room.third_party_invite', () => {
    const room = roomWithTpi();
    room.add(room.member(ALICE, DAVE, 'invite'));
    room.join(DAVE);
    const spec = room.member(DAVE, BOB, 'invite', { third_party_invite: { signed: signedFor(BOB, 'tok') } });
    expect(room.check(spec)).toMatchObject({ allowed: false, reason: expect.stringMatching(/third_party_invite/) });
  });

  it('uses a custom verifier when given', () => {
    const room = roomWithTpi();
    const spec = room.member(ALICE, BOB, 'invite', { third_party_invite: { signed: { mxid: BOB, token: 'tok', signatures: { x: { 'ed25519:1': 'sig' } } } } });
    expect(room.check(spec).allowed).toBe(false);
    expect(room.check(spec, { verifySignature: (_o, sig, pk) => sig === 'sig' && pk === pubB64 }).allowed).toBe(true);
  });
});
