/**
 * Exactly-once delivery accounting for the `delivery` and `fanout` scenarios.
 *
 * Senders tell the ledger which event ids were acknowledged (and when, and
 * which receivers must see them); receivers tell it every event id their
 * /sync returned. Arrivals may be reported BEFORE the matching
 * acknowledgement (a long-poll can return before the PUT /send response
 * does), so nothing is judged until `account()`.
 *
 * - missing:    an (event, receiver) pair that was expected but never arrived
 * - duplicates: extra arrivals of an (event, receiver) pair beyond the first
 * - unexpected: arrivals of an event id that was never acknowledged (e.g. a
 *               send that timed out on the client but was stored), or at a
 *               receiver the event was not meant for
 * Latency is first arrival minus acknowledgement, clamped at 0 (the event can
 * reach a sync before the sender's ack reaches the sender).
 */

interface Expected {
  ackAt: number;
  receivers: ReadonlySet<string>;
}

export interface ReceiverAccount {
  receiver: string;
  missing: number;
  duplicates: number;
}

export interface DeliveryAccount {
  /** Acknowledged events. */
  events: number;
  /** Expected (event, receiver) deliveries. */
  expected: number;
  /** Expected deliveries that arrived at least once. */
  delivered: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  exactlyOnce: boolean;
  perReceiver: ReceiverAccount[];
}

export class DeliveryLedger {
  private readonly expected = new Map<string, Expected>();
  /** eventId -> receiver -> arrival times */
  private readonly arrivals = new Map<string, Map<string, number[]>>();
  private outstanding = 0;

  /** Record that `eventId` was acknowledged at `ackAt` and must reach each of `receivers`. */
  expect(eventId: string, ackAt: number, receivers: Iterable<string>): void {
    if (this.expected.has(eventId)) throw new Error(`event ${eventId} acknowledged twice`);
    const set = new Set(receivers);
    this.expected.set(eventId, { ackAt, receivers: set });
    const seen = this.arrivals.get(eventId);
    for (const r of set) if (!seen?.get(r)?.length) this.outstanding++;
  }

  /** Record that `receiver`'s sync returned `eventId` at time `at`. */
  arrive(receiver: string, eventId: string, at: number): void {
    let byReceiver = this.arrivals.get(eventId);
    if (!byReceiver) this.arrivals.set(eventId, (byReceiver = new Map()));
    let times = byReceiver.get(receiver);
    if (!times) byReceiver.set(receiver, (times = []));
    times.push(at);
    if (times.length === 1 && this.expected.get(eventId)?.receivers.has(receiver)) this.outstanding--;
  }

  /** Expected deliveries still outstanding. */
  get pending(): number {
    return this.outstanding;
  }

  /** True when every acknowledged event reached every receiver it should. */
  isComplete(): boolean {
    return this.outstanding === 0;
  }

  /** Whether `eventId` has reached all of its receivers. */
  hasReachedAll(eventId: string): boolean {
    const e = this.expected.get(eventId);
    if (!e) return false;
    const seen = this.arrivals.get(eventId);
    for (const r of e.receivers) if (!seen?.get(r)?.length) return false;
    return true;
  }

  /** Latest first-arrival time of `eventId` over its receivers (NaN unless all have it). */
  lastFirstArrival(eventId: string): number {
    if (!this.hasReachedAll(eventId)) return NaN;
    const e = this.expected.get(eventId)!;
    const seen = this.arrivals.get(eventId)!;
    let last = -Infinity;
    for (const r of e.receivers) last = Math.max(last, seen.get(r)![0]!);
    return last;
  }

  /** Ack-to-first-arrival latencies (ms, >= 0) of every expected delivery that arrived. */
  latencies(): number[] {
    const out: number[] = [];
    for (const [eventId, e] of this.expected) {
      const seen = this.arrivals.get(eventId);
      if (!seen) continue;
      for (const r of e.receivers) {
        const t = seen.get(r)?.[0];
        if (t !== undefined) out.push(Math.max(0, t - e.ackAt));
      }
    }
    return out;
  }

  /** Every expected delivery's ack and first arrival (diagnostics). */
  trace(): Array<{ eventId: string; receiver: string; ackAt: number; at: number | undefined }> {
    const out: Array<{ eventId: string; receiver: string; ackAt: number; at: number | undefined }> = [];
    for (const [eventId, e] of this.expected) {
      const seen = this.arrivals.get(eventId);
      for (const r of e.receivers) out.push({ eventId, receiver: r, ackAt: e.ackAt, at: seen?.get(r)?.[0] });
    }
    return out;
  }

  account(): DeliveryAccount {
    const per = new Map<string, ReceiverAccount>();
    const forReceiver = (r: string): ReceiverAccount => {
      let a = per.get(r);
      if (!a) per.set(r, (a = { receiver: r, missing: 0, duplicates: 0 }));
      return a;
    };
    let expected = 0;
    let delivered = 0;
    let missing = 0;
    let duplicates = 0;
    let unexpected = 0;
    for (const [eventId, e] of this.expected) {
      const seen = this.arrivals.get(eventId);
      for (const r of e.receivers) {
        expected++;
        const n = seen?.get(r)?.length ?? 0;
        const acc = forReceiver(r);
        if (n === 0) {
          missing++;
          acc.missing++;
        } else {
          delivered++;
          if (n > 1) {
            duplicates += n - 1;
            acc.duplicates += n - 1;
          }
        }
      }
    }
    for (const [eventId, byReceiver] of this.arrivals) {
      const e = this.expected.get(eventId);
      for (const [r, times] of byReceiver) if (!e || !e.receivers.has(r)) unexpected += times.length;
    }
    return {
      events: this.expected.size,
      expected,
      delivered,
      missing,
      duplicates,
      unexpected,
      exactlyOnce: missing === 0 && duplicates === 0 && unexpected === 0,
      perReceiver: [...per.values()].sort((a, b) => a.receiver.localeCompare(b.receiver)),
    };
  }
}
