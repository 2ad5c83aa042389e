import type { SegmentSummary } from "../status/summary";
import { sealedThrough } from "./hot-log";
import { newestSegments } from "./segment-index";

// What the status page shows of the event log beyond getLogState: the newest sealed segments and
// when the oldest event still held was written. Reads only, a few rows.

/** Segments listed on the status page. */
export const NEWEST_SEGMENTS_SHOWN = 5;

export function newestSegmentsShown(sql: SqlStorage): SegmentSummary[] {
  return newestSegments(sql, NEWEST_SEGMENTS_SHOWN);
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
