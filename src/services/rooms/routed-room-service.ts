/**
 * RoomService whose writes run in the room's events writer (DESIGN.md §4):
 * every write operation becomes a plain-JSON request `{op, roomId, args}`
 * handed to `route`, which assembly builds with the worker runtime (a local
 * call in the writer, HTTP replication elsewhere). The writer side calls
 * `runLocal`. Reads stay on RoomService/RoomReadService in every process.
 */
import type { Actor, RoomsContext } from './context.js';
import { chooseRoomId, RoomIdTakenError, type CreateRoomRequest } from './create-room.js';
import { RoomService } from './room-service.js';

export interface RoomWriteRequest {
  op: RoomWriteOp;
  /** Shard key: the room (every event of a room is persisted by the room's events writer). */
  roomId?: string;
  args: unknown[];
}

const OPS = ['createRoom', 'sendMessage', 'sendState', 'redact', 'join', 'invite', 'leave', 'kick', 'ban', 'unban', 'knock', 'forget', 'onProfileChanged'] as const;
export type RoomWriteOp = (typeof OPS)[number];

/** createRoom: ids drawn before giving up on collisions. */
const CREATE_ATTEMPTS = 5;

/** Profile updates: rooms updated at once. */
const PROFILE_CONCURRENCY = 16;

export class RoutedRoomService extends RoomService {
  constructor(
    ctx: RoomsContext,
    private readonly route: (req: RoomWriteRequest) => Promise<unknown>,
  ) {
    super(ctx);
  }

  /** The writer side: runs a routed request here. JSON turned undefined into null; undo that. */
  async runLocal(req: RoomWriteRequest): Promise<unknown> {
    if (!OPS.includes(req.op)) throw new Error(`unknown room write op ${String(req.op)}`);
    const args = (req.args ?? []).map((a) => (a === null ? undefined : a));
    const fn = (RoomService.prototype as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[req.op]!;
    const out = await fn.apply(this, args);
    return out === undefined ? {} : { result: out };
  }

  private async call<T>(op: RoomWriteOp, roomId: string | undefined, args: unknown[]): Promise<T> {
    const res = (await this.route({ op, ...(roomId ? { roomId } : {}), args })) as { result?: T } | undefined;
    return res?.result as T;
  }

  /** The room id is chosen here, so that the creation runs in the new room's own events writer. */
  override async createRoom(actor: Actor, req: CreateRoomRequest) {
    for (let attempt = 1; ; attempt++) {
      const chosen = chooseRoomId(this.ctx.serverName, actor, req);
      try {
        return await this.call<{ roomId: string; alias?: string }>('createRoom', chosen.roomId, [actor, req, chosen]);
      } catch (e) {
        // Another process drew the same id (a v12 id hashes creator, content and millisecond): draw again.
        if (!RoomIdTakenError.is(e) || attempt >= CREATE_ATTEMPTS) throw e;
      }
    }
  }
  override sendMessage(actor: Actor, roomId: string, type: string, content: Record<string, any>, txnId: string) {
    return this.call<string>('sendMessage', roomId, [actor, roomId, type, content, txnId]);
  }
  override sendState(actor: Actor, roomId: string, type: string, sk: string, content: Record<string, any>) {
    return this.call<string>('sendState', roomId, [actor, roomId, type, sk, content]);
  }
  override redact(actor: Actor, roomId: string, eventId: string, txnId: string, reason?: string) {
    return this.call<string>('redact', roomId, [actor, roomId, eventId, txnId, reason]);
  }
  override async join(actor: Actor, roomIdOrAlias: string, reason?: string) {
    const roomId = await this.resolveRoomIdOrAlias(roomIdOrAlias);
    return this.call<string>('join', roomId, [actor, roomId, reason]);
  }
  override async knock(actor: Actor, roomIdOrAlias: string, reason?: string) {
    const roomId = await this.resolveRoomIdOrAlias(roomIdOrAlias);
    return this.call<string>('knock', roomId, [actor, roomId, reason]);
  }
  override async invite(actor: Actor, roomId: string, target: string, reason?: string, isDirect = false) {
    await this.call('invite', roomId, [actor, roomId, target, reason, isDirect]);
  }
  override async leave(actor: Actor, roomId: string, reason?: string) {
    await this.call('leave', roomId, [actor, roomId, reason]);
  }
  override async kick(actor: Actor, roomId: string, target: string, reason?: string) {
    await this.call('kick', roomId, [actor, roomId, target, reason]);
  }
  override async ban(actor: Actor, roomId: string, target: string, reason?: string) {
    await this.call('ban', roomId, [actor, roomId, target, reason]);
  }
  override async unban(actor: Actor, roomId: string, target: string, reason?: string) {
    await this.call('unban', roomId, [actor, roomId, target, reason]);
  }
  override async forget(actor: Actor, roomId: string) {
    await this.call('forget', roomId, [actor, roomId]);
  }
  /** One request per joined room, each in the room's events writer (a few at a time). */
  override async onProfileChanged(userId: string, profile: { displayname?: string; avatar_url?: string }) {
    const rooms = (await this.ctx.store.getRoomsForUser(userId, ['join'])).map((r) => r.roomId);
    for (let i = 0; i < rooms.length; i += PROFILE_CONCURRENCY) {
      await Promise.all(
        rooms.slice(i, i + PROFILE_CONCURRENCY).map((roomId) =>
          this.call('onProfileChanged', roomId, [userId, profile, [roomId]]).catch(() => {
            /* e.g. no longer allowed, or the writer is down: the profile still changed */
          }),
        ),
      );
    }
  }
}
