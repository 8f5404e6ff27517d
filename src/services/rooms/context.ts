/** What the rooms services share: the store, the creation path, serialiser and visibility. */
import type { RoomStore } from '../../storage/rooms/store.js';
import type { ClientEventSerializer } from './client-events.js';
import type { EventCreator } from './event-creator.js';
import type { VisibilityChecker } from './visibility.js';

export interface ProfileLookup {
  /** Profile of a local user (undefined for unknown/remote users). */
  getProfile(userId: string): Promise<{ displayname?: string; avatar_url?: string } | undefined>;
}

export interface RoomsContext {
  serverName: string;
  store: RoomStore;
  creator: EventCreator;
  serializer: ClientEventSerializer;
  visibility: VisibilityChecker;
  profiles?: ProfileLookup;
  /** Whether a user is a server admin (alias deletion); optional. */
  isAdmin?: (userId: string) => Promise<boolean>;
}

export interface Actor {
  userId: string;
  deviceId?: string | null;
  /** Guests may only join rooms whose m.room.guest_access is can_join. */
  isGuest?: boolean;
}
