/**
 * POST /rooms/{roomId}/upgrade (client-server API "Room Upgrades", server
 * behaviour):
 *  1. the user must be joined and allowed to send m.room.tombstone;
 *  2. the replacement room's m.room.create carries `predecessor`
 *     ({room_id, event_id: the tombstone}), the new room_version and the old
 *     room's `type`;
 *  3. transferable state is copied (TRANSFERRED below). The power levels
 *     are first sent with the upgrader raised to the highest level any of
 *     that state needs, then restored to the old room's levels;
 *  4. local aliases (and the canonical alias) move to the new room, and so
 *     does the room's public-directory listing; the old room's canonical
 *     alias stops naming the moved aliases;
 *  5. m.room.tombstone goes to the old room;
 *  6. the old room's power levels are restricted: events_default and invite
 *     become max(50, users_default + 1) (when the upgrader may do so).
 * The new room is created first and the tombstone sent once it exists, each
 * in its own room's events writer (they may be different event persisters),
 * so that a failure never leaves a tombstone pointing nowhere (see
 * `upgrade` for what happens on each failure). Before room version 12 the
 * predecessor's event_id is therefore the last event of the old room when
 * the upgrade started (the spec's "last known event"), not the tombstone.
 *
 * To room version 12: the new room id is derived from its create event, which
 * is therefore fixed first and names its predecessor without `event_id` (the
 * spec lets it be omitted; the tombstone needs the new room id). The upgrader
 * is a room creator with infinite power, so is left out of the power levels'
 * `users` and needs no temporary raise.
 */
import type { Logger } from 'pino';
import { randomOpaqueId } from '../../matrix/event-ids.js';
import { canSend, parsePowerLevelValue, roomCreators } from '../../matrix/power-levels.js';
import { hashRoomId, nextCreateTimestamp } from '../rooms/create-room.js';
import { getRoomVersion, type RoomVersion } from '../../matrix/room-versions.js';
import { stateKey } from '../../matrix/types.js';
import type { RoomStore } from '../../storage/rooms/store.js';
import { Errors, MatrixError } from '../../util/errors.js';
import type { Actor, ProfileLookup } from '../rooms/context.js';
import { dropCanonicalAliases } from '../rooms/directory-service.js';
import type { EventCreator, EventSpec } from '../rooms/event-creator.js';
import type { RoomService } from '../rooms/room-service.js';
import { membershipIn } from '../rooms/room-service.js';

/** State copied to the replacement room (power levels handled apart). */
export const TRANSFERRED = [
  'm.room.server_acl',
  'm.room.encryption',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.guest_access',
  'm.room.history_visibility',
  'm.room.join_rules',
];

/**
 * Power levels content valid in the target version: levels as integers
 * (v10+ refuses strings/floats), invalid entries dropped.
 */
export function normalisePowerLevels(content: Record<string, any>, rv: RoomVersion): Record<string, any> {
  const out: Record<string, any> = {};
  const lvl = (v: unknown) => parsePowerLevelValue(v, false);
  for (const [k, v] of Object.entries(content)) {
    if (k === 'users' || k === 'events' || k === 'notifications') {
      if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
      const m: Record<string, number> = {};
      for (const [kk, vv] of Object.entries(v)) {
        const n = lvl(vv);
        if (n !== undefined) m[kk] = n;
      }
      out[k] = m;
    } else if (['ban', 'kick', 'invite', 'redact', 'events_default', 'state_default', 'users_default'].includes(k)) {
      const n = lvl(v);
      if (n !== undefined) out[k] = n;
    } else {
      out[k] = v;
    }
  }
  void rv;
  return out;
}

/** The highest level any state event needs under this power levels content. */
function highestStateLevel(pl: Record<string, any>): number {
  const levels = [Number(pl.state_default ?? 50), ...Object.values(pl.events ?? {}).map(Number)];
  return Math.max(100, ...levels.filter((n) => Number.isFinite(n)));
}

export interface UpgradeDeps {
  serverName: string;
  creator: EventCreator;
  roomStore: RoomStore;
  /** Writes to the old room (tombstone, power levels, canonical alias, leaving): routed to its events writer. */
  rooms: RoomService;
  profiles?: ProfileLookup;
  logger?: Pick<Logger, 'warn'>;
  /**
   * Runs the new room's events in the new room's events writer: there
   * `createReplacementRoom` (over HTTP replication with several event
   * persisters). Absent: here.
   */
  createRoomEvents?: (req: ReplacementRoom) => Promise<void>;
}

/** The replacement room's events, as sent to its events writer (plain JSON). */
export interface ReplacementRoom {
  roomId: string;
  /** m.room.create first, then the copied state. */
  events: Array<Omit<EventSpec, 'precheck' | 'txn'>>;
}

/** What the API calls. */
export interface RoomUpgrader {
  /** `additionalCreators`: v12+ only (ignored for other versions), not copied from the old room. */
  upgrade(actor: Actor, roomId: string, newVersion: string, additionalCreators?: string[]): Promise<string>;
}

export class RoomUpgradeService implements RoomUpgrader {
  constructor(private readonly d: UpgradeDeps) {}

  /**
   * Runs in any process; each room's events are written by that room's
   * events writer. Order and failures:
   *  - every check first (nothing is written if one fails);
   *  - the new room is created (its writer): if its m.room.create fails,
   *    the error is answered and nothing else happened;
   *  - the tombstone goes to the old room (its writer). If that writer
   *    refuses it (a Matrix error, e.g. the upgrader lost the permission
   *    meanwhile), the upgrader leaves the new room, nothing else moves,
   *    and the refusal is answered: the old room stays as it was, not
   *    hidden. If the writer gives no answer (down, timed out), the
   *    tombstone may still land: the new room is kept (so that a late
   *    tombstone points at a room the upgrader is in) and the error is
   *    answered; aliases, the directory listing and the old room's
   *    restriction stay as they were;
   *  - after the tombstone: aliases and the directory listing move, the old
   *    room's power levels are restricted and its canonical alias updated
   *    (each "if possible": the upgrade has happened).
   */
  async upgrade(actor: Actor, roomId: string, newVersion: string, additionalCreators?: string[]): Promise<string> {
    const rv = getRoomVersion(newVersion);
    if (!rv) throw Errors.unsupportedRoomVersion(newVersion);
    const old = await this.d.rooms.requireRoom(roomId);
    if (membershipIn(old, actor.userId) !== 'join') throw Errors.forbidden(`You are not joined to room ${roomId}`);
    if (!canSend(old.state, actor.userId, 'm.room.tombstone', true, old.rv)) {
      throw Errors.forbidden('You cannot upgrade this room (no permission to send m.room.tombstone)');
    }
    const c = (type: string) => old.state.get(stateKey(type, ''))?.content as Record<string, any> | undefined;
    const user = actor.userId;
    const oldType = c('m.room.create')?.type;
    const creators = new Set<string>([user]);
    if (rv.privilegedCreators) for (const u of additionalCreators ?? []) creators.add(u);

    // 2. The replacement room's create event.
    const specs: ReplacementRoom['events'] = [];
    let newRoomId: string;
    if (rv.roomIdFromCreateEvent) {
      const content: Record<string, any> = { room_version: rv.id, predecessor: { room_id: roomId } };
      if (typeof oldType === 'string') content.type = oldType;
      const extra = [...creators].filter((u) => u !== user);
      if (extra.length) content.additional_creators = extra;
      const ts = nextCreateTimestamp();
      newRoomId = hashRoomId(user, content, ts, rv);
      specs.push({ roomId: newRoomId, type: 'm.room.create', stateKey: '', sender: user, content, roomVersion: rv.id, originServerTs: ts });
    } else {
      newRoomId = `!${randomOpaqueId(18)}:${this.d.serverName}`;
      // The tombstone is sent once the new room exists: the predecessor
      // names the last event of the old room known now.
      const last = [...old.extremities].sort((a, b) => Number(a.depth) - Number(b.depth)).pop();
      const predecessor: Record<string, any> = { room_id: roomId };
      if (typeof last?.event_id === 'string') predecessor.event_id = last.event_id;
      const createContent: Record<string, any> = { room_version: rv.id, predecessor };
      if (typeof oldType === 'string') createContent.type = oldType;
      if (!rv.implicitRoomCreator) createContent.creator = user;
      specs.push({ roomId: newRoomId, type: 'm.room.create', stateKey: '', sender: user, content: createContent, roomVersion: rv.id });
    }
    const state = (type: string, content: Record<string, any>, sk = '') => specs.push({ roomId: newRoomId, type, stateKey: sk, sender: user, content });

    // 3. The copied state.
    const profile = await this.d.profiles?.getProfile(user);
    const join: Record<string, any> = { membership: 'join' };
    if (profile?.displayname !== undefined) join.displayname = profile.displayname;
    if (profile?.avatar_url !== undefined) join.avatar_url = profile.avatar_url;
    state('m.room.member', join, user);

    const oldPl = c('m.room.power_levels');
    const pl = normalisePowerLevels(oldPl ?? { users: { [user]: 100 } }, rv);
    if (rv.privilegedCreators && pl.users) {
      // The creators (the upgrader and any additional ones) have infinite
      // power in the new room and may not be listed.
      pl.users = Object.fromEntries(Object.entries(pl.users as Record<string, number>).filter(([u]) => !creators.has(u)));
    }
    const needed = highestStateLevel(pl);
    if (old.rv.privilegedCreators && !rv.privilegedCreators) {
      // From v12+ to an earlier version: the old room's creators had
      // infinite power and were not listed; they get the highest level.
      const listed = { ...(pl.users ?? {}) } as Record<string, number>;
      for (const u of roomCreators(old.state.get(stateKey('m.room.create', '')), old.rv)) listed[u] = Math.max(listed[u] ?? 0, needed);
      pl.users = listed;
    }
    const users = { ...(pl.users ?? {}) } as Record<string, number>;
    const raised = !rv.privilegedCreators && (users[user] ?? Number(pl.users_default ?? 0)) < needed;
    state('m.room.power_levels', raised ? { ...pl, users: { ...users, [user]: needed } } : pl);
    for (const type of TRANSFERRED) {
      const content = c(type);
      if (content && Object.keys(content).length) state(type, content);
    }
    const canonical = c('m.room.canonical_alias');
    if (canonical && Object.keys(canonical).length) state('m.room.canonical_alias', canonical);
    if (raised) state('m.room.power_levels', pl);

    const replacement: ReplacementRoom = { roomId: newRoomId, events: specs };
    await (this.d.createRoomEvents ? this.d.createRoomEvents(replacement) : this.createReplacementRoom(replacement));

    // 5. The tombstone, in the old room's events writer.
    const tombstone = { body: 'This room has been replaced', replacement_room: newRoomId };
    try {
      await this.d.rooms.sendState(actor, roomId, 'm.room.tombstone', '', tombstone);
    } catch (e) {
      if (e instanceof MatrixError && e.status < 500) {
        // Refused: the old room is left as it was; the new room is abandoned.
        await this.d.rooms.leave(actor, newRoomId).catch((err: unknown) => {
          this.d.logger?.warn({ err, roomId, newRoomId }, 'room upgrade: could not leave the abandoned replacement room');
        });
      } else {
        this.d.logger?.warn({ err: e, roomId, newRoomId }, 'room upgrade: the old room\'s events writer did not answer the tombstone; the replacement room is kept');
      }
      throw e;
    }

    // 4. Aliases and the directory listing move.
    const aliases = await this.d.roomStore.getAliasesForRoom(roomId);
    for (const a of aliases) {
      const row = await this.d.roomStore.getAlias(a);
      await this.d.roomStore.deleteAlias(a);
      await this.d.roomStore.createAlias(a, newRoomId, row?.creator ?? user);
    }
    const oldRow = await this.d.roomStore.getRoom(roomId);
    if (oldRow?.isPublic) {
      await this.d.roomStore.setRoomPublic(newRoomId, true);
      await this.d.roomStore.setRoomPublic(roomId, false);
    }

    // 6. Restrict the old room.
    const after = await this.d.creator.getRoomState(roomId);
    if (after && canSend(after.state, user, 'm.room.power_levels', true, after.rv)) {
      const cur = (after.state.get(stateKey('m.room.power_levels', ''))?.content ?? {}) as Record<string, any>;
      const restricted = Math.max(50, (parsePowerLevelValue(cur.users_default, !!after.rv.integerPowerLevels) ?? 0) + 1);
      const ev = parsePowerLevelValue(cur.events_default, !!after.rv.integerPowerLevels) ?? 0;
      const inv = parsePowerLevelValue(cur.invite, !!after.rv.integerPowerLevels) ?? 0;
      if (ev < restricted || inv < restricted) {
        try {
          await this.d.rooms.sendState(actor, roomId, 'm.room.power_levels', '', { ...cur, events_default: Math.max(ev, restricted), invite: Math.max(inv, restricted) });
        } catch (err) {
          /* "if possible": the upgrade itself has succeeded */
          this.d.logger?.warn({ err, roomId }, 'room upgrade: could not restrict the old room');
        }
      }
    }
    // 4 (cont.). The moved aliases now point at the new room: the old room's
    // canonical alias stops naming them (sent as the upgrader, or as another
    // local member who may when the upgrader may not).
    if (aliases.length) {
      const { serverName, roomStore: store, creator, rooms, logger } = this.d;
      await dropCanonicalAliases({ serverName, store, creator, rooms, logger }, roomId, aliases, user);
    }
    return newRoomId;
  }

  /**
   * The events writer side: persists the replacement room's events (the
   * create event first; copied state that fails is left out, as when a
   * room is created). Throws when the create event fails.
   */
  async createReplacementRoom(req: ReplacementRoom): Promise<void> {
    const [first] = req.events;
    if (first?.type !== 'm.room.create' || req.events.some((e) => e.roomId !== req.roomId)) {
      throw new Error('room upgrade: the replacement room\'s events must start with its create event and all be in it');
    }
    const results = await Promise.allSettled(req.events.map((s) => this.d.creator.create(s)));
    if (results[0]!.status === 'rejected') throw results[0]!.reason;
    for (const r of results) {
      if (r.status === 'rejected') this.d.logger?.warn({ err: r.reason, roomId: req.roomId }, 'room upgrade: a copied state event was refused');
    }
  }
}
