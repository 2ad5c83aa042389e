import { encodeSegment, segmentKey } from "../log/segment";
import { encodeAnchors, pushAnchor, type TimeAnchor } from "../log/time-anchors";
import { snapshotHostCursors } from "./host-cursors";
import {
  deleteMeta,
  hotRowRecords,
  ROW_FIRST_US,
  readMeta,
  sealedThrough,
  writeMeta,
} from "./hot-log";

// Sealing moves the oldest hot-log rows into one immutable R2 segment. Three steps, each safe
// to repeat after a crash at any point:
//   1. record the seq range being sealed in SQLite (so a retry seals exactly the same rows and
//      writes exactly the same bytes to the same key),
//   2. put the segment to R2,
//   3. in one transaction: add the segment to the index (which makes its rows stale: they are
//      at or below hot-log.ts sealedThrough, kept for appends to reuse, not deleted, because a
//      delete is billed one row per row) and clear the pending range.
// A crash after 2 leaves a complete R2 object that step 2 of the retry overwrites with identical
// bytes; a crash before 3 commits leaves the rows hot, so nothing is lost or served twice.
// Rows are concatenated whole, overflow parts included (hot-log.ts writeHotRow), so a record
// spread over several SQLite rows is one record again in the segment. The segment's index row
// keeps the time anchors of its rows (log/time-anchors.ts), packed in a BLOB of the row written
// anyway, so sealed events keep their exact times and a time cursor finds its seq inside.

export type SealOptions = {
  storage: DurableObjectStorage;
  bucket: R2Bucket;
  maxBytes: number;
  /** Seal rows created before this time even if they are under maxBytes. */
  sealOlderThanMs: number;
};

export type SealOutcome =
  | { sealed: false }
  | { sealed: true; firstSeq: number; lastSeq: number; bytes: number };

type HotRow = {
  first_seq: number;
  last_seq: number;
  created_ms: number;
  first_us: number;
  records: ArrayBuffer;
};

function pendingRange(storage: DurableObjectStorage): { first: number; last: number } | null {
  const first = readMeta(storage.sql, "sealing_first");
  const last = readMeta(storage.sql, "sealing_last");
  return first !== null && last !== null ? { first, last } : null;
}

/**
 * Chooses the rows of the next segment: from the oldest unsealed one, up to maxBytes (at least
 * one row).
 */
function chooseRows(
  storage: DurableObjectStorage,
  opts: SealOptions,
): { first: number; last: number } | null {
  const rows = storage.sql.exec<{
    first_seq: number;
    last_seq: number;
    created_ms: number;
    size: number;
  }>(
    `SELECT first_seq, last_seq, created_ms,
       length(records) + COALESCE((SELECT SUM(length(bytes)) FROM hot_log_overflow WHERE seq = hot_log.first_seq), 0) AS size
     FROM hot_log WHERE first_seq > ? ORDER BY first_seq`,
    sealedThrough(storage.sql),
  );
  let first: number | null = null;
  let last = 0;
  let bytes = 0;
  let oldestMs = Number.POSITIVE_INFINITY;
  for (const row of rows) {
    if (first !== null && bytes + row.size > opts.maxBytes) {
      bytes = opts.maxBytes; // a full segment's worth is waiting
      break;
    }
    if (first === null) first = row.first_seq;
    last = row.last_seq;
    bytes += row.size;
    oldestMs = Math.min(oldestMs, row.created_ms);
  }
  if (first === null) return null;
  const full = bytes >= opts.maxBytes;
  const old = oldestMs < opts.sealOlderThanMs;
  return full || old ? { first, last } : null;
}

export async function sealSegment(opts: SealOptions): Promise<SealOutcome> {
  const { storage, bucket } = opts;
  const sql = storage.sql;
  let range = pendingRange(storage);
  if (!range) {
    range = chooseRows(storage, opts);
    if (!range) return { sealed: false };
    const chosen = range;
    storage.transactionSync(() => {
      writeMeta(sql, "sealing_first", chosen.first);
      writeMeta(sql, "sealing_last", chosen.last);
    });
  }
  const rows = sql
    .exec<HotRow>(
      `SELECT first_seq, last_seq, created_ms, ${ROW_FIRST_US} AS first_us, records FROM hot_log
       WHERE first_seq >= ? AND last_seq <= ? ORDER BY first_seq`,
      range.first,
      range.last,
    )
    .toArray();
  const firstRow = rows[0];
  const lastRow = rows[rows.length - 1];
  if (
    !firstRow ||
    !lastRow ||
    firstRow.first_seq !== range.first ||
    lastRow.last_seq !== range.last
  ) {
    // the range was already sealed and trimmed (crash after step 3's commit is impossible, but
    // be explicit rather than write a wrong segment)
    storage.transactionSync(() => {
      deleteMeta(sql, "sealing_first");
      deleteMeta(sql, "sealing_last");
    });
    return { sealed: false };
  }
  const parts = rows.map((row) => hotRowRecords(sql, row.first_seq, row.records));
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const records = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    records.set(part, offset);
    offset += part.byteLength;
  }
  let firstMs = Number.POSITIVE_INFINITY;
  let lastMs = 0;
  const anchors: TimeAnchor[] = [];
  for (const row of rows) {
    firstMs = Math.min(firstMs, row.created_ms);
    lastMs = Math.max(lastMs, row.created_ms);
    pushAnchor(anchors, { firstSeq: row.first_seq, firstUs: row.first_us });
  }
  const lastUs = lastRow.first_us + (lastRow.last_seq - lastRow.first_seq);
  const segment = encodeSegment(records);
  await bucket.put(segmentKey(range.first), segment.bytes, {
    httpMetadata: {
      contentType: "application/vnd.freehose.segment",
      cacheControl: "public, max-age=31536000, immutable",
    },
    customMetadata: { firstSeq: String(range.first), lastSeq: String(range.last) },
  });
  const done = range;
  storage.transactionSync(() => {
    sql.exec(
      `INSERT OR REPLACE INTO segments (first_seq, last_seq, first_ms, last_ms, bytes, last_us, time_anchors)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      done.first,
      done.last,
      firstMs,
      lastMs,
      segment.bytes.byteLength,
      lastUs,
      encodeAnchors(anchors),
    );
    // the rows' cursors as they are now, not as read before the put: an admin reset may have
    // removed a host from them meanwhile (host-cursors.ts)
    snapshotHostCursors(sql, done.first, done.last);
    // overflow parts are rare (records over MAX_HOT_ROW_BYTES) and keyed by seq, which is never
    // reused: deleted, so they do not accumulate (a delete matching nothing writes no row)
    sql.exec("DELETE FROM hot_log_overflow WHERE seq >= ? AND seq <= ?", done.first, done.last);
    deleteMeta(sql, "sealing_first");
    deleteMeta(sql, "sealing_last");
  });
  return {
    sealed: true,
    firstSeq: done.first,
    lastSeq: done.last,
    bytes: segment.bytes.byteLength,
  };
}

/**
 * Deletes segments whose newest event is older than the replay window: from the index first
 * (with `trimmed_through`, so cursors before them get OutdatedCursor and no segment plan lists
 * them any more), then from R2 once that transaction is durable. A plan therefore never lists an
 * object that is gone; a crash between the two leaves objects no index names, which the bucket's
 * lifecycle rule removes (docs/segment-format.md).
 */
export async function expireSegments(
  storage: DurableObjectStorage,
  bucket: R2Bucket,
  cutoffMs: number,
): Promise<number> {
  const sql = storage.sql;
  const expired = sql
    .exec<{ first_seq: number; last_seq: number }>(
      "SELECT first_seq, last_seq FROM segments WHERE last_ms < ? ORDER BY first_seq LIMIT 100",
      cutoffMs,
    )
    .toArray();
  if (expired.length === 0) return 0;
  const through = Math.max(...expired.map((s) => s.last_seq));
  storage.transactionSync(() => {
    for (const s of expired) sql.exec("DELETE FROM segments WHERE first_seq = ?", s.first_seq);
    writeMeta(sql, "trimmed_through", Math.max(through, readMeta(sql, "trimmed_through") ?? 0));
  });
  // the output gate would hold the delete until the rows are durable anyway; explicit, because
  // the order is the point
  await storage.sync();
  await bucket.delete(expired.map((s) => segmentKey(s.first_seq)));
  return expired.length;
}
