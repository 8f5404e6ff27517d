/**
 * Profiles (display name and avatar URL) of local users. The rooms
 * capability listens to `onProfileChanged` to update member events.
 */
import { Errors } from '../../util/errors.js';
import type { AccountsStore } from './store.js';

export interface Profile {
  displayname?: string;
  avatar_url?: string;
}

export type ProfileField = 'displayname' | 'avatar_url';

export type ProfileListener = (userId: string, profile: Profile, changed: ProfileField) => Promise<void> | void;

/** Longest display name / avatar URL accepted. */
export const MAX_DISPLAYNAME_LENGTH = 256;
export const MAX_AVATAR_URL_LENGTH = 1000;

export class ProfileService {
  readonly onProfileChanged: ProfileListener[] = [];

  constructor(private readonly store: AccountsStore) {}

  /** The profile of a local user; undefined if there is no such (active) user. */
  async getProfile(userId: string): Promise<Profile | undefined> {
    const user = await this.store.getUser(userId);
    if (!user) return undefined;
    const row = await this.store.getProfile(userId);
    const out: Profile = {};
    if (row?.displayname != null) out.displayname = row.displayname;
    if (row?.avatar_url != null) out.avatar_url = row.avatar_url;
    return out;
  }

  async setDisplayname(userId: string, value: string | null): Promise<Profile> {
    if (value !== null && value.length > MAX_DISPLAYNAME_LENGTH) {
      throw Errors.invalidParam(`displayname is longer than ${MAX_DISPLAYNAME_LENGTH} characters`);
    }
    return this.set(userId, 'displayname', value === '' ? null : value);
  }

  async setAvatarUrl(userId: string, value: string | null): Promise<Profile> {
    if (value !== null && value.length > MAX_AVATAR_URL_LENGTH) {
      throw Errors.invalidParam(`avatar_url is longer than ${MAX_AVATAR_URL_LENGTH} characters`);
    }
    return this.set(userId, 'avatar_url', value === '' ? null : value);
  }

  private async set(userId: string, field: ProfileField, value: string | null): Promise<Profile> {
    if (!(await this.store.getUser(userId))) throw Errors.notFound('No such user');
    await this.store.setProfileField(userId, field, value);
    const profile = (await this.getProfile(userId)) ?? {};
    for (const l of this.onProfileChanged) await l(userId, profile, field);
    return profile;
  }
}
