import type { SegmentSummary } from "../status/summary";
import { sealedThrough } from "./hot-log";

// What the status page shows of the event log beyond getLogState: the newest sealed segments and
// when the oldest event still held was written. Reads only, a few rows.

/** Segments listed on the status page. */
export const NEWEST_SEGMENTS_SHOWN = 5;

export function newestSegments(sql: SqlStorage, limit = NEWEST_SEGMENTS_SHOWN): SegmentSummary[] {
  return sql
    .exec<{
      first_seq: number;
      last_seq: number;
      first_ms: number;
      last_ms: number;
      bytes: number;
    }>(
      "SELECT first_seq, last_seq, first_ms, last_ms, bytes FROM segments ORDER BY first_seq DESC LIMIT ?",
      limit,
    )
    .toArray()
    .map((s) => ({
      firstSeq: s.first_seq,
      lastSeq: s.last_seq,
      firstMs: s.first_ms,
      lastMs: s.last_ms,
      bytes: s.bytes,
    }));
}

/** When the oldest event still served was written: its segment's first, or its hot row's. */
export function oldestEventMs(sql: SqlStorage): number | null {
  const segment = sql
    .exec<{ first_ms: number }>("SELECT first_ms FROM segments ORDER BY first_seq LIMIT 1")
    .toArray()[0];
  if (segment) return segment.first_ms;
  const hot = sql
    .exec<{ created_ms: number }>(
      "SELECT created_ms FROM hot_log WHERE first_seq > ? ORDER BY first_seq LIMIT 1",
      sealedThrough(sql),
    )
    .toArray()[0];
  return hot?.created_ms ?? null;
}
