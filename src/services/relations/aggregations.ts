/**
 * Server-side bundled aggregations (client-server API "Aggregations of
 * child events"): `unsigned["m.relations"]` on served events with
 *   m.replace    the most recent valid edit (by origin_server_ts, then
 *                event_id), sent by the original sender, same type, not
 *                state, with m.new_content;
 *   m.thread     { latest_event, count, current_user_participated };
 *   m.reference  { chunk: [{event_id}] }.
 * Annotations (reactions) are not bundled (the spec leaves them to clients).
 *
 * Computed per batch of served events: two grouped queries plus one for the
 * latest thread events, whatever the batch size. Redacted events and state
 * events get no aggregations.
 */
import type { StoredEvent } from '../../storage/rooms/store.js';
import type { RoomsExtraStore } from '../../storage/rooms-extra/store.js';
import type { ClientEvent, Viewer } from '../rooms/client-events.js';
import type { VisibilityChecker } from '../rooms/visibility.js';

export interface PlainSerializer {
  /** Serialises events without bundled aggregations. */
  serializePlain(events: readonly StoredEvent[], viewer?: Viewer): Promise<ClientEvent[]>;
}

/** Whether `edit` is a valid replacement of `original` (spec "Validity of replacement events"). */
export function isValidEdit(original: StoredEvent['event'], edit: StoredEvent['event']): boolean {
  if (edit.sender !== original.sender || edit.type !== original.type) return false;
  if (typeof edit.state_key === 'string' || typeof original.state_key === 'string') return false;
  const nc = (edit.content as any)?.['m.new_content'];
  if (!nc || typeof nc !== 'object' || Array.isArray(nc)) return false;
  if ((original.content as any)?.['m.relates_to']?.rel_type === 'm.replace') return false;
  return true;
}

/** The newest of the valid edits (origin_server_ts, ties broken by event_id). */
export function latestEdit(original: StoredEvent['event'], edits: StoredEvent[]): StoredEvent | undefined {
  let best: StoredEvent | undefined;
  for (const e of edits) {
    if (!isValidEdit(original, e.event)) continue;
    if (
      !best ||
      e.event.origin_server_ts > best.event.origin_server_ts ||
      (e.event.origin_server_ts === best.event.origin_server_ts && e.event.event_id > best.event.event_id)
    ) {
      best = e;
    }
  }
  return best;
}

export class AggregationBundler {
  constructor(
    private readonly store: RoomsExtraStore,
    private readonly visibility: VisibilityChecker,
    private readonly serializer: PlainSerializer,
  ) {}

  /**
   * Adds unsigned["m.relations"] to `out` (the serialised form of `events`,
   * same order; a promise when it is being built meanwhile: awaited only
   * once the relations are read).
   */
  async bundle(events: readonly StoredEvent[], outIn: ClientEvent[] | Promise<ClientEvent[]>, viewer?: Viewer, depth = 0): Promise<void> {
    const idx: number[] = [];
    events.forEach((se, i) => {
      if (!se.redactedBy && typeof se.event.state_key !== 'string') idx.push(i);
    });
    if (!idx.length) return;
    const ids = idx.map((i) => events[i]!.event.event_id);
    const [threads, related] = await Promise.all([
      this.store.threadAggregates(ids, viewer?.userId),
      this.store.editsAndReferences(ids),
    ]);
    if (!threads.size && !related.length) return;

    const latest = threads.size ? await this.store.eventsByStream([...threads.values()].map((t) => t.latestStream)) : [];
    // Only relations the viewer may see.
    const visible = new Set((await this.visibleSubset([...latest, ...related], viewer)).map((e) => e.event.event_id));

    const edits = new Map<string, StoredEvent[]>();
    const refs = new Map<string, string[]>();
    for (const r of related) {
      if (!visible.has(r.event.event_id)) continue;
      const rel = (r.event.content as any)?.['m.relates_to'];
      const parent = rel?.event_id as string;
      if (rel?.rel_type === 'm.replace') (edits.get(parent) ?? edits.set(parent, []).get(parent)!).push(r);
      else (refs.get(parent) ?? refs.set(parent, []).get(parent)!).push(r.event.event_id);
    }

    // Serialise the chosen edits and latest thread events in one batch.
    const chosenEdits = new Map<string, StoredEvent>();
    for (const i of idx) {
      const se = events[i]!;
      const e = latestEdit(se.event, edits.get(se.event.event_id) ?? []);
      if (e) chosenEdits.set(se.event.event_id, e);
    }
    const latestVisible = latest.filter((e) => visible.has(e.event.event_id));
    const nested = [...chosenEdits.values(), ...latestVisible];
    const nestedOut = nested.length ? await this.serializer.serializePlain(nested, viewer) : [];
    // The latest thread event carries its own edits (one level deep).
    if (depth === 0 && latestVisible.length) {
      await this.bundle(latestVisible, nestedOut.slice(chosenEdits.size), viewer, depth + 1);
    }
    const byId = new Map(nestedOut.map((e) => [e.event_id, e]));
    const latestByStream = new Map(latestVisible.map((e) => [e.streamOrdering, e.event.event_id]));
    const out = await outIn;

    for (const i of idx) {
      const id = events[i]!.event.event_id;
      const rel: Record<string, any> = {};
      const edit = chosenEdits.get(id);
      if (edit) rel['m.replace'] = byId.get(edit.event.event_id);
      const t = threads.get(id);
      if (t) {
        const latestId = latestByStream.get(t.latestStream);
        const latestEvent = latestId ? byId.get(latestId) : undefined;
        if (latestEvent) {
          rel['m.thread'] = {
            latest_event: latestEvent,
            count: t.count,
            current_user_participated: t.participated || (!!viewer && events[i]!.event.sender === viewer.userId),
          };
        }
      }
      const r = refs.get(id);
      if (r?.length) rel['m.reference'] = { chunk: r.map((event_id) => ({ event_id })) };
      const o = out[i];
      if (o && Object.keys(rel).length) {
        o.unsigned = { ...(o.unsigned ?? {}), 'm.relations': rel };
      }
    }
  }

  private async visibleSubset(events: StoredEvent[], viewer?: Viewer): Promise<StoredEvent[]> {
    const byRoom = new Map<string, StoredEvent[]>();
    for (const e of events) (byRoom.get(e.roomId) ?? byRoom.set(e.roomId, []).get(e.roomId)!).push(e);
    const parts = await Promise.all([...byRoom].map(([roomId, evs]) => this.visibility.filter(viewer?.userId, roomId, evs)));
    return parts.flat();
  }
}
