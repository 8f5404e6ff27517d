/**
 * Auth rule for m.room.member events (rule 5 in v1–v5, rule 4 from v6 after
 * m.room.aliases lost its special case). Version differences:
 *  - v7+: `knock` membership and join rule; leaving from `knock` allowed.
 *  - v8+: `restricted` join rule with `join_authorised_via_users_server`.
 *  - v10+: `knock_restricted` join rule (both knock and restricted joins).
 *  - v11: the room creator is the create event's sender.
 */
import { namedLevel, roomCreator, userPowerLevel, CREATE_KEY } from '../power-levels.js';
import type { RoomVersion } from '../room-versions.js';
import { prevEventIds, stateKey, type RoomEvent, type StateMap } from '../types.js';
import { anySignatureMatches, thirdPartyInvitePublicKeys, type SignatureVerifier } from './third-party-invite.js';
import { ALLOW, deny, isObject, joinRuleOf, membershipOf, type AuthResult } from './util.js';

export interface MemberAuthOptions {
  /** Verifies `third_party_invite.signed` signatures (default: Ed25519 via node:crypto). */
  verifySignature?: SignatureVerifier;
  /**
   * v8+: "If the event is not validly signed by the homeserver of the user ID
   * denoted by join_authorised_via_users_server, reject". Signature checking
   * happens in the event-receipt path (signing.ts); when this callback is
   * given, the rules call it, otherwise the check is assumed done elsewhere.
   */
  isSignedByServer?: (event: RoomEvent, serverName: string) => boolean;
}

export function checkMemberEvent(
  event: RoomEvent,
  state: StateMap,
  rv: RoomVersion,
  opts: MemberAuthOptions = {},
): AuthResult {
  const content = isObject(event.content) ? event.content : {};
  const target = event.state_key;
  const membership = content.membership;
  if (typeof target !== 'string' || typeof membership !== 'string') {
    return deny('m.room.member needs a state_key and content.membership');
  }

  const authoriser = content.join_authorised_via_users_server;
  if (rv.restrictedJoin && authoriser !== undefined && opts.isSignedByServer) {
    const server = typeof authoriser === 'string' ? authoriser.slice(authoriser.indexOf(':') + 1) : '';
    if (!server || !opts.isSignedByServer(event, server)) {
      return deny('event is not signed by the server of join_authorised_via_users_server');
    }
  }

  const senderMembership = membershipOf(state, event.sender);
  const targetMembership = membershipOf(state, target);
  const senderLevel = (): number => userPowerLevel(state, event.sender, rv);
  const targetLevel = (): number => userPowerLevel(state, target, rv);

  switch (membership) {
    case 'join':
      return checkJoin(event, state, rv, target, targetMembership, authoriser);

    case 'invite': {
      if (isObject(content.third_party_invite)) {
        return checkThirdPartyInvite(event, state, target, targetMembership, content.third_party_invite, opts);
      }
      if (senderMembership !== 'join') return deny('inviter is not joined to the room');
      if (targetMembership === 'join' || targetMembership === 'ban') {
        return deny(`invitee is already ${targetMembership === 'join' ? 'joined' : 'banned'}`);
      }
      if (senderLevel() >= namedLevel(state, 'invite')) return ALLOW;
      return deny('sender lacks the power level to invite');
    }

    case 'leave': {
      if (event.sender === target) {
        const canLeaveFrom = rv.knock ? ['invite', 'join', 'knock'] : ['invite', 'join'];
        return canLeaveFrom.includes(senderMembership)
          ? ALLOW
          : deny(`cannot leave from membership "${senderMembership}"`);
      }
      if (senderMembership !== 'join') return deny('sender is not joined to the room');
      if (targetMembership === 'ban' && senderLevel() < namedLevel(state, 'ban')) {
        return deny('sender lacks the power level to unban');
      }
      if (senderLevel() >= namedLevel(state, 'kick') && targetLevel() < senderLevel()) return ALLOW;
      return deny('sender lacks the power level to kick this user');
    }

    case 'ban': {
      if (senderMembership !== 'join') return deny('sender is not joined to the room');
      if (senderLevel() >= namedLevel(state, 'ban') && targetLevel() < senderLevel()) return ALLOW;
      return deny('sender lacks the power level to ban this user');
    }

    case 'knock': {
      if (!rv.knock) return deny('knocking is not supported in this room version');
      const rule = joinRuleOf(state);
      if (rule !== 'knock' && !(rv.knockRestricted && rule === 'knock_restricted')) {
        return deny(`join rule "${rule}" does not allow knocking`);
      }
      if (event.sender !== target) return deny('cannot knock on behalf of another user');
      if (senderMembership === 'ban' || senderMembership === 'invite' || senderMembership === 'join') {
        return deny(`cannot knock with membership "${senderMembership}"`);
      }
      return ALLOW;
    }

    default:
      return deny(`unknown membership "${membership}"`);
  }
}

function checkJoin(
  event: RoomEvent,
  state: StateMap,
  rv: RoomVersion,
  target: string,
  targetMembership: string,
  authoriser: unknown,
): AuthResult {
  // The creator's own first join, directly after the create event.
  const create = state.get(CREATE_KEY);
  const prev = prevEventIds(event);
  if (create && prev.length === 1 && prev[0] === create.event_id && target === roomCreator(create, rv)) {
    return ALLOW;
  }
  if (event.sender !== target) return deny('cannot join on behalf of another user');
  if (targetMembership === 'ban') return deny('user is banned from the room');

  const rule = joinRuleOf(state);
  const invitedOrJoined = targetMembership === 'invite' || targetMembership === 'join';
  if (rule === 'invite' || (rv.knock && rule === 'knock')) {
    return invitedOrJoined ? ALLOW : deny(`join rule "${rule}" requires an invite`);
  }
  if ((rv.restrictedJoin && rule === 'restricted') || (rv.knockRestricted && rule === 'knock_restricted')) {
    if (invitedOrJoined) return ALLOW;
    // Whether the joiner satisfies the `allow` conditions is the authorising
    // server's decision; the rules only check that the authoriser could invite.
    if (typeof authoriser !== 'string') return deny('restricted join without join_authorised_via_users_server');
    if (membershipOf(state, authoriser) !== 'join') return deny('authorising user is not joined to the room');
    if (userPowerLevel(state, authoriser, rv) < namedLevel(state, 'invite')) {
      return deny('authorising user lacks the power level to invite');
    }
    return ALLOW;
  }
  if (rule === 'public') return ALLOW;
  return deny(`join rule "${rule}" does not allow joining`);
}

function checkThirdPartyInvite(
  event: RoomEvent,
  state: StateMap,
  target: string,
  targetMembership: string,
  tpi: Record<string, any>,
  opts: MemberAuthOptions,
): AuthResult {
  if (targetMembership === 'ban') return deny('invitee is banned');
  const signed = tpi.signed;
  if (!isObject(signed)) return deny('third_party_invite has no signed object');
  if (typeof signed.mxid !== 'string' || typeof signed.token !== 'string') {
    return deny('third_party_invite.signed needs mxid and token');
  }
  if (signed.mxid !== target) return deny('third_party_invite mxid does not match state_key');
  const invite = state.get(stateKey('m.room.third_party_invite', signed.token));
  if (!invite) return deny('no m.room.third_party_invite for this token');
  if (invite.sender !== event.sender) return deny('sender did not send the m.room.third_party_invite');
  const keys = thirdPartyInvitePublicKeys(invite.content);
  if (anySignatureMatches(signed, keys, opts.verifySignature)) return ALLOW;
  return deny('no valid signature on third_party_invite.signed');
}
