import { decodeAnchors, firstSeqAtOrAfter } from "../log/time-anchors";
import { ROW_FIRST_US, sealedThrough } from "./hot-log";

// Where a Jetstream time cursor starts: just before the first event sequenced at or after it.
// Reads the segment index and the hot rows' times, never the events: times increase with seq, so
// the first segment whose last time reaches the cursor holds that event (found inside it through
// the segment's time anchors, log/time-anchors.ts), else the first hot row that does.
//
// A segment sealed before anchors were kept (no `last_us`) only knows its last commit's
// millisecond: it is taken whole when that millisecond can reach the cursor, so a cursor inside it
// replays from its start (its events are timed by estimate anyway, jetstream/time.ts).

/** The seq to replay after for the events sequenced at or after `us`; null when none is stored. */
export function seqBeforeTime(sql: SqlStorage, us: number): number | null {
  const segment = sql
    .exec<{ first_seq: number; last_seq: number; time_anchors: ArrayBuffer | null }>(
      `SELECT first_seq, last_seq, time_anchors FROM segments
       WHERE COALESCE(last_us, last_ms * 1000 + 999) >= ? ORDER BY first_seq LIMIT 1`,
      us,
    )
    .toArray()[0];
  if (segment) {
    if (!segment.time_anchors) return segment.first_seq - 1;
    const anchors = decodeAnchors(new Uint8Array(segment.time_anchors));
    const seq = firstSeqAtOrAfter(anchors, segment.last_seq, us);
    return (seq ?? segment.first_seq) - 1;
  }
  const row = sql
    .exec<{ first_seq: number; first_us: number }>(
      `SELECT first_seq, ${ROW_FIRST_US} AS first_us FROM hot_log
       WHERE first_seq > ? AND ${ROW_FIRST_US} + last_seq - first_seq >= ?
       ORDER BY first_seq LIMIT 1`,
      sealedThrough(sql),
      us,
    )
    .toArray()[0];
  if (!row) return null;
  return row.first_seq + Math.max(0, us - row.first_us) - 1;
}
