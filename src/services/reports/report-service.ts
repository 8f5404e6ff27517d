/**
 * Reporting content (client-server API "Reporting content"):
 * POST /rooms/{roomId}/report/{eventId}, POST /rooms/{roomId}/report and
 * POST /users/{userId}/report.
 *
 * The reporter must be joined to the room (else 404 for events, 403 for
 * rooms are indistinguishable on purpose: both answer M_NOT_FOUND, so a
 * report cannot probe for event or room existence); the event must exist in
 * the room. `score` is -100 (most offensive) .. 0, kept for older clients.
 * Reports are stored in event_reports for the server's administrators.
 *
 * A user report (Matrix 1.14) names a user of this server: one the server
 * does not know (a remote user, or a local name nobody registered) answers
 * 404 M_NOT_FOUND, as the spec allows; the reporter need not share a room
 * with them. Stored in user_reports.
 */
import { isValidHistoricalUserId, isValidRoomId } from '../../matrix/identifiers.js';
import type { RoomStore } from '../../storage/rooms/store.js';
import type { RoomsExtraStore } from '../../storage/rooms-extra/store.js';
import { Errors } from '../../util/errors.js';
import type { VisibilityChecker } from '../rooms/visibility.js';

/** Whether a user has an account on this server (the accounts capability answers). */
export interface LocalUsers {
  userExists(userId: string): Promise<boolean>;
}

export class ReportService {
  constructor(
    private readonly store: RoomsExtraStore,
    private readonly roomStore: RoomStore,
    private readonly visibility: VisibilityChecker,
    private readonly users: LocalUsers,
  ) {}

  async reportEvent(userId: string, roomId: string, eventId: string, reason: string | undefined, score: number | undefined): Promise<number> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    if (score !== undefined && (score < -100 || score > 0)) throw Errors.invalidParam("'score' must be an integer between -100 and 0");
    const member = await this.roomStore.getMembership(roomId, userId);
    const ev = await this.roomStore.getEvent(eventId);
    // Unknown event, other room, or not the reporter's to see: all 404.
    if (!ev || ev.roomId !== roomId || ev.outlier) throw Errors.notFound('Unable to report event: it does not exist or you aren\'t able to see it.');
    if (member?.membership !== 'join') throw Errors.notFound('Unable to report event: it does not exist or you aren\'t able to see it.');
    if (!(await this.visibility.filter(userId, roomId, [ev])).length) {
      throw Errors.notFound('Unable to report event: it does not exist or you aren\'t able to see it.');
    }
    const content: Record<string, unknown> = {};
    if (reason !== undefined) content.reason = reason;
    if (score !== undefined) content.score = score;
    return this.store.addReport({ roomId, eventId, userId, reason: reason ?? null, score: score ?? null, content });
  }

  async reportRoom(userId: string, roomId: string, reason: string | undefined): Promise<number> {
    if (!isValidRoomId(roomId)) throw Errors.invalidParam(`Invalid room id: ${roomId}`);
    if (!(await this.roomStore.getRoom(roomId))) throw Errors.notFound('Room not found');
    const content: Record<string, unknown> = reason !== undefined ? { reason } : {};
    return this.store.addReport({ roomId, eventId: null, userId, reason: reason ?? null, score: null, content });
  }

  async reportUser(userId: string, targetUserId: string, reason: string): Promise<number> {
    if (!isValidHistoricalUserId(targetUserId)) throw Errors.invalidParam(`Invalid user id: ${targetUserId}`);
    // Only users with an account here: remote users are unknown to this server.
    if (!(await this.users.userExists(targetUserId))) throw Errors.notFound('The user was not found.');
    return this.store.addUserReport({ targetUserId, userId, reason });
  }
}
