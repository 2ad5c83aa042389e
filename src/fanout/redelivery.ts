import { appendAnchors, type TimeAnchor } from "../log/time-anchors";

// What a sender does with a delivery that failed (delivery-queues.ts): it is put back in front of
// what was queued for that Fanout since, and sent again, merged with it, after a delay that
// doubles with each failure in a row. Dropping it would leave the Fanout to find the gap in seqs
// at its next delivery, and on a relay that goes quiet there is none: its live consumers would
// wait for the Fanout's watchdog (30-60 s). Repeating a delivery duplicates nothing: a Fanout
// sends no consumer a seq at or below its cursor.

/** The delay before the first redelivery: time for a restarted Fanout to be reachable again. */
export const REDELIVERY_FIRST_DELAY_MS = 500;
/** The longest delay between redeliveries to a Fanout that stays unreachable. */
export const REDELIVERY_MAX_DELAY_MS = 8_000;

/** How long to wait before sending again after `failures` failed deliveries in a row (≥ 1). */
export function redeliveryDelayMs(failures: number): number {
  const doublings = Math.max(0, Math.min(failures - 1, 16));
  return Math.min(REDELIVERY_FIRST_DELAY_MS * 2 ** doublings, REDELIVERY_MAX_DELAY_MS);
}

/** The records queued for one Fanout, in seq order, and the time anchors of their rows. */
export type Pending = {
  parts: Uint8Array[];
  anchors: TimeAnchor[];
  bytes: number;
  firstSeq: number;
  lastSeq: number;
};

/**
 * `pending` with the failed delivery `failed` put back in front of it, so the next delivery
 * sends both, in seq order. If the two together pass `maxBytes`, `pending` alone: the sender's
 * memory stays bounded, and the next delivery, starting after a gap, makes the Fanout read the
 * failed part from storage.
 */
export function requeueFailed(
  pending: Pending,
  failed: { records: Uint8Array; firstSeq: number; lastSeq: number; anchors: TimeAnchor[] },
  maxBytes: number,
): Pending {
  const bytes = failed.records.byteLength;
  if (pending.parts.length === 0)
    return {
      parts: [failed.records],
      anchors: [...failed.anchors],
      bytes,
      firstSeq: failed.firstSeq,
      lastSeq: failed.lastSeq,
    };
  if (bytes + pending.bytes > maxBytes) return pending;
  const anchors = [...failed.anchors];
  appendAnchors(anchors, pending.anchors);
  return {
    parts: [failed.records, ...pending.parts],
    anchors,
    bytes: bytes + pending.bytes,
    firstSeq: failed.firstSeq,
    lastSeq: pending.lastSeq,
  };
}
