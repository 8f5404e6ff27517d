/**
 * What writers tell the notifier (DESIGN.md §4). Every stream advance — a
 * local write or a replicated row — goes through `notify`, which wakes
 * exactly the long-polls whose users or rooms are affected.
 * The implementation lives in notifier.ts.
 */
import type { SyncStreamName } from './tokens.js';

export type NotifiedStream = 'events' | SyncStreamName;

export interface StreamChange {
  stream: NotifiedStream;
  /** New position of the stream (for events: the stream_ordering). */
  position: number;
  /** Rooms whose members care (events, typing, receipts). */
  rooms?: string[];
  /** Users who care directly (to-device, account data, invites, presence...). */
  users?: string[];
  /** Writer instance, for multi-writer streams. */
  instance?: string;
}

/**
 * What stops a wait: the part of AbortSignal the notifier uses (an
 * AbortSignal is one). A request's is a lighter object (api/http-server.ts):
 * building an AbortController for every long-poll showed in the profiles.
 */
export interface WaitSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface StreamNotifier {
  notify(change: StreamChange): void;
}
