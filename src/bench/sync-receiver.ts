/**
 * A receiver long-polling /sync with a filter that keeps only m.room.message
 * timelines of the given rooms, reporting every event this run marked.
 */
import type { MatrixApi, Session } from './client.js';
import { markerOf, type Marker } from './context.js';
import { sleep } from './util.js';

export interface ReceiverOptions {
  rooms: string[];
  pollTimeoutMs?: number;
  onEvent(eventId: string, marker: Marker, roomId: string, at: number): void;
}

export class SyncReceiver {
  /** Syncs that reported `limited: true` (a gap the client would have to back-fill). */
  limitedGaps = 0;
  syncs = 0;
  errors = 0;
  lastError: string | undefined;
  private since: string | undefined;
  private filterId: string | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly api: MatrixApi,
    readonly session: Session,
    private readonly options: ReceiverOptions,
  ) {}

  /** Upload the filter and take a `since` token (so only later events count), without starting the loop. */
  async prepare(): Promise<void> {
    const base = {
      presence: { types: [] },
      account_data: { types: [] },
      room: {
        rooms: this.options.rooms,
        state: { types: [] },
        ephemeral: { types: [] },
        account_data: { types: [] },
        timeline: { types: ['m.room.message'], limit: 1000 },
      },
    };
    this.filterId = await this.api.uploadFilter(this.session, base);
    // The first sync only fetches a `since` token: keep its timelines tiny.
    const catchUp = await this.api.uploadFilter(this.session, { ...base, room: { ...base.room, timeline: { ...base.room.timeline, limit: 1 } } });
    const first = await this.api.sync(this.session, { filter: catchUp, timeout: 0 });
    this.since = first.json.next_batch;
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const res = await this.api.sync(
          this.session,
          { since: this.since, filter: this.filterId, timeout: this.options.pollTimeoutMs ?? 5000 },
          signal,
        );
        const at = performance.now();
        this.syncs++;
        for (const [roomId, room] of Object.entries(res.json.rooms?.join ?? {})) {
          if (room.timeline?.limited) this.limitedGaps++;
          for (const ev of room.timeline?.events ?? []) {
            const m = markerOf(ev.content);
            if (m) this.options.onEvent(ev.event_id, m, roomId, at);
          }
        }
        this.since = res.json.next_batch;
      } catch (e) {
        if (signal.aborted) return;
        this.errors++;
        this.lastError = (e as Error).message;
        await sleep(200);
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
