/**
 * Room summaries (client-server API GET /v1/room_summary/{roomIdOrAlias},
 * MSC3266; also served on the unstable im.nheko.summary paths).
 *
 * Available when the room is accessible to the requester (see
 * hierarchy/room-info.ts); anonymous requests only for public/knock join
 * rules or world_readable rooms. Otherwise, and for rooms this server does
 * not know, 404 M_NOT_FOUND (so the room's existence is not revealed).
 */
import type { Membership } from '../../matrix/types.js';
import { Errors } from '../../util/errors.js';
import { membershipOf, type RoomInfo, type RoomInfoReader } from '../hierarchy/room-info.js';

export interface AliasResolver {
  resolveRoomIdOrAlias(idOrAlias: string): Promise<string>;
}

export class RoomSummaryService {
  constructor(
    private readonly info: RoomInfoReader,
    private readonly aliases: AliasResolver,
  ) {}

  async summary(userId: string | undefined, roomIdOrAlias: string): Promise<RoomInfo & { membership?: Membership }> {
    const roomId = await this.aliases.resolveRoomIdOrAlias(roomIdOrAlias);
    const room = await this.info.room(roomId);
    if (!room || !(await this.info.accessible(room, userId))) throw Errors.notFound('Room not found or is not accessible');
    const out: RoomInfo & { membership?: Membership } = await this.info.describe(room);
    if (userId) out.membership = membershipOf(room, userId) ?? 'leave';
    return out;
  }
}
