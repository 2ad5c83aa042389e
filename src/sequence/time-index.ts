import { sealedThrough } from "./hot-log";

// Where a Jetstream time cursor starts (jetstream/time.ts): the seq after which the first
// segment or hot row that can hold a time at or after `ms` begins. Reads the segment index and
// the hot rows' commit times, never the events: segments end in time order, so the walk stops at
// the first one that reaches `ms`.

/** The seq to replay after for events at or after `ms`; null when nothing stored is that recent. */
export function seqBeforeTime(sql: SqlStorage, ms: number): number | null {
  const segment = sql
    .exec<{ first_seq: number }>(
      "SELECT first_seq FROM segments WHERE last_ms >= ? ORDER BY first_seq LIMIT 1",
      ms,
    )
    .toArray()[0];
  if (segment) return segment.first_seq - 1;
  // a row's events have times below (created_ms + 1) * 1000
  const row = sql
    .exec<{ first_seq: number }>(
      "SELECT first_seq FROM hot_log WHERE first_seq > ? AND created_ms + 1 > ? ORDER BY first_seq LIMIT 1",
      sealedThrough(sql),
      ms,
    )
    .toArray()[0];
  return row ? row.first_seq - 1 : null;
}
