import { sealedThrough } from "./hot-log";

// Pages of the segment index for history over HTTP (GET /segments, xrpc/segment-plan.ts). Reads
// only: the index rows are written by seal.ts and removed by retention before their objects.

/** One sealed segment as the index records it (times: the group commits of its first and last rows). */
export type SegmentEntry = {
  firstSeq: number;
  lastSeq: number;
  firstMs: number;
  lastMs: number;
  bytes: number;
};

export type SegmentPage = {
  /** In seq order; the first one holds afterSeq + 1 (or is the oldest retained). */
  segments: SegmentEntry[];
  /** The highest sealed seq (hot-log.ts sealedThrough). */
  sealedThrough: number;
  /** The first seq of the oldest retained segment, null when none is retained. */
  oldestSeq: number | null;
};

type SegmentRow = {
  first_seq: number;
  last_seq: number;
  first_ms: number;
  last_ms: number;
  bytes: number;
};

const SEGMENT_COLUMNS = "first_seq, last_seq, first_ms, last_ms, bytes";

function toEntry(row: SegmentRow): SegmentEntry {
  return {
    firstSeq: row.first_seq,
    lastSeq: row.last_seq,
    firstMs: row.first_ms,
    lastMs: row.last_ms,
    bytes: row.bytes,
  };
}

/**
 * The segments holding every sealed seq > afterSeq, at most `limit` of them. Segments are
 * contiguous, so the one holding afterSeq + 1 is the last whose first seq is at or below it;
 * found through the primary key, so a page reads about `limit` rows however long the index is.
 */
export function readSegmentPage(sql: SqlStorage, afterSeq: number, limit: number): SegmentPage {
  const segments = sql
    .exec<SegmentRow>(
      `SELECT ${SEGMENT_COLUMNS} FROM segments
       WHERE first_seq >= COALESCE((SELECT MAX(first_seq) FROM segments WHERE first_seq <= ?), 0)
         AND last_seq > ?
       ORDER BY first_seq LIMIT ?`,
      afterSeq + 1,
      afterSeq,
      limit,
    )
    .toArray()
    .map(toEntry);
  const oldest = sql
    .exec<{ first_seq: number }>("SELECT first_seq FROM segments ORDER BY first_seq LIMIT 1")
    .toArray()[0];
  return { segments, sealedThrough: sealedThrough(sql), oldestSeq: oldest?.first_seq ?? null };
}

/** The newest `limit` segments, newest first (the status page). */
export function newestSegments(sql: SqlStorage, limit: number): SegmentEntry[] {
  return sql
    .exec<SegmentRow>(
      `SELECT ${SEGMENT_COLUMNS} FROM segments ORDER BY first_seq DESC LIMIT ?`,
      limit,
    )
    .toArray()
    .map(toEntry);
}
