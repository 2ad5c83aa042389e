import { encodeRecords, type LogRecord, recordsAfter } from "../log/records";
import { concatBytes } from "../protocol/bytes";
import { rewriteFrameSeq } from "../protocol/seq-rewrite";

// The Sequencer's SQLite tables and the functions over them. One row per batch in `hot_log`
// (rows written are billed: DESIGN.md "Cost shapes the design"), per-host upstream cursors
// written in the same transaction so a retried batch is recognised, and the index of sealed
// R2 segments (R2 `list` is billed and is not the index).

/** SQLite BLOBs in Durable Objects are capped at 2 MB; stay clearly under. */
export const MAX_HOT_ROW_BYTES = 1_900_000;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS hot_log (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  records BLOB NOT NULL,
  -- JSON {host: last upstream seq} of the hosts whose events end in this row (last row of a batch)
  cursors TEXT
);
CREATE TABLE IF NOT EXISTS host_cursor (host TEXT PRIMARY KEY, upstream_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  first_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fanouts (name TEXT PRIMARY KEY);
`;

export type IngestEvent = {
  /** Upstream host, or "" for an event the relay makes itself (e.g. an admin takedown). */
  host: string;
  upstreamSeq: number;
  frame: Uint8Array;
  /** The account the event is about (`repo` or `did` of the body): relay-wide checks use it. */
  did: string;
};

/** An event the Sequencer refused to store (counted by the ingester under `reason`). */
export type DroppedEvent = { host: string; upstreamSeq: number; reason: string };

export type AppendResult = {
  accepted: number;
  duplicates: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** For each host in the batch, the last upstream seq now durably sequenced. */
  hostCursors: Record<string, number>;
  /**
   * Events not stored, each counted as a drop (e.g. `RepoTakendown`, `TooBigToStore`). Their
   * upstream seqs still count as sequenced in `hostCursors`: they are never offered again.
   */
  dropped: DroppedEvent[];
};

export type AppendedRows = { firstSeq: number; lastSeq: number; records: Uint8Array }[];

export function readMeta(sql: SqlStorage, key: string): number | null {
  const row = sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
  return row ? row.value : null;
}

export function writeMeta(sql: SqlStorage, key: string, value: number): void {
  sql.exec(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    key,
    value,
  );
}

export function deleteMeta(sql: SqlStorage, key: string): void {
  sql.exec("DELETE FROM meta WHERE key = ?", key);
}

/** The newest seq ever assigned (hot, sealed or trimmed), or firstSeq - 1 for an empty log. */
export function loadHeadSeq(sql: SqlStorage, firstSeq: number): number {
  const row = sql
    .exec<{ head: number | null }>(
      `SELECT MAX(m) AS head FROM (
         SELECT MAX(last_seq) AS m FROM hot_log
         UNION ALL SELECT MAX(last_seq) FROM segments
         UNION ALL SELECT value FROM meta WHERE key = 'trimmed_through')`,
    )
    .toArray()[0];
  return Math.max(row?.head ?? 0, firstSeq - 1);
}

/**
 * Per-host cursors: the snapshot taken when rows were sealed (`host_cursor`), then the cursors
 * carried by the rows still hot, oldest first. Keeping them in the batch's own row saves a row
 * write per host per batch; the snapshot is written once per sealed segment.
 */
export function loadHostCursors(sql: SqlStorage): Map<string, number> {
  const cursors = new Map<string, number>();
  for (const row of sql.exec<{ host: string; upstream_seq: number }>(
    "SELECT host, upstream_seq FROM host_cursor",
  )) {
    cursors.set(row.host, row.upstream_seq);
  }
  for (const row of sql.exec<{ cursors: string }>(
    "SELECT cursors FROM hot_log WHERE cursors IS NOT NULL ORDER BY first_seq",
  )) {
    for (const [host, seq] of Object.entries(JSON.parse(row.cursors) as Record<string, number>)) {
      cursors.set(host, seq);
    }
  }
  return cursors;
}

/** Folds the cursors of rows being sealed into the `host_cursor` snapshot (same transaction). */
export function snapshotHostCursors(sql: SqlStorage, rowCursors: (string | null)[]): void {
  const latest = new Map<string, number>();
  for (const json of rowCursors) {
    if (!json) continue;
    for (const [host, seq] of Object.entries(JSON.parse(json) as Record<string, number>))
      latest.set(host, seq);
  }
  for (const [host, seq] of latest) {
    sql.exec(
      "INSERT INTO host_cursor (host, upstream_seq) VALUES (?, ?) ON CONFLICT(host) DO UPDATE SET upstream_seq = excluded.upstream_seq",
      host,
      seq,
    );
  }
}

/** Forgets a host's cursor everywhere it is kept (admin recovery after a PDS reset its seq). */
export function forgetHostCursor(sql: SqlStorage, host: string): void {
  const path = `$."${host}"`;
  sql.exec("DELETE FROM host_cursor WHERE host = ?", host);
  sql.exec(
    "UPDATE hot_log SET cursors = json_remove(cursors, ?) WHERE cursors IS NOT NULL AND json_extract(cursors, ?) IS NOT NULL",
    path,
    path,
  );
}

/**
 * Assigns seqs to the events of a batch that are new (upstream seq above the host's cursor),
 * rewrites each frame's seq, and appends them with the updated host cursors in one transaction.
 * Pure bookkeeping over `sql`; the caller owns `headSeq` and `hostCursors` and must pass
 * copies it only adopts on success (the transaction rolls back on a throw).
 */
export function appendEvents(
  storage: DurableObjectStorage,
  events: readonly IngestEvent[],
  headSeq: number,
  hostCursors: Map<string, number>,
  nowMs: number,
): { result: AppendResult; rows: AppendedRows; headSeq: number } {
  let seq = headSeq;
  let duplicates = 0;
  const touched = new Map<string, number>();
  const rows: AppendedRows = [];
  let current: LogRecord[] = [];
  let currentBytes = 0;
  const flushRow = () => {
    if (current.length === 0) return;
    const first = current[0] as LogRecord;
    const last = current[current.length - 1] as LogRecord;
    rows.push({ firstSeq: first.seq, lastSeq: last.seq, records: encodeRecords(current) });
    current = [];
    currentBytes = 0;
  };
  for (const event of events) {
    if (event.host !== "") {
      const known = touched.get(event.host) ?? hostCursors.get(event.host);
      if (known !== undefined && event.upstreamSeq <= known) {
        duplicates++;
        continue;
      }
      touched.set(event.host, event.upstreamSeq);
    }
    seq += 1;
    const frame = rewriteFrameSeq(event.frame, seq);
    if (currentBytes + frame.byteLength + 12 > MAX_HOT_ROW_BYTES) flushRow();
    current.push({ seq, frame });
    currentBytes += frame.byteLength + 12;
  }
  flushRow();
  const sql = storage.sql;
  const cursorsJson = touched.size > 0 ? JSON.stringify(Object.fromEntries(touched)) : null;
  storage.transactionSync(() => {
    rows.forEach((row, i) => {
      sql.exec(
        "INSERT INTO hot_log (first_seq, last_seq, created_ms, records, cursors) VALUES (?, ?, ?, ?, ?)",
        row.firstSeq,
        row.lastSeq,
        nowMs,
        row.records,
        i === rows.length - 1 ? cursorsJson : null,
      );
    });
  });
  const hostCursorsOut: Record<string, number> = {};
  for (const event of events) {
    if (event.host === "") continue;
    const value = touched.get(event.host) ?? hostCursors.get(event.host);
    if (value !== undefined) hostCursorsOut[event.host] = value;
  }
  const accepted = seq - headSeq;
  return {
    result: {
      accepted,
      duplicates,
      firstSeq: accepted > 0 ? headSeq + 1 : null,
      lastSeq: accepted > 0 ? seq : null,
      hostCursors: hostCursorsOut,
      dropped: [],
    },
    rows,
    headSeq: seq,
  };
}

export type LogRead =
  | { kind: "caughtUp"; headSeq: number }
  | { kind: "segment"; key: string; firstSeq: number; lastSeq: number; bytes: number }
  | { kind: "hot"; records: Uint8Array; lastSeq: number }
  | { kind: "trimmed"; trimmedThrough: number };

/**
 * What a reader positioned after `afterSeq` reads next: a sealed segment to fetch from R2, or
 * up to `maxBytes` of hot records from SQLite. Answered from one consistent view of the log, so
 * a reader that loops on it never sees a gap even while seals and trims run.
 */
export function readLog(
  sql: SqlStorage,
  afterSeq: number,
  maxBytes: number,
  headSeq: number,
  segmentKey: (firstSeq: number) => string,
): LogRead {
  if (afterSeq >= headSeq) return { kind: "caughtUp", headSeq };
  const trimmedThrough = readMeta(sql, "trimmed_through") ?? 0;
  if (afterSeq < trimmedThrough) return { kind: "trimmed", trimmedThrough };
  const segment = sql
    .exec<{ first_seq: number; last_seq: number; bytes: number }>(
      "SELECT first_seq, last_seq, bytes FROM segments WHERE last_seq > ? ORDER BY first_seq LIMIT 1",
      afterSeq,
    )
    .toArray()[0];
  if (segment && segment.first_seq <= afterSeq + 1) {
    return {
      kind: "segment",
      key: segmentKey(segment.first_seq),
      firstSeq: segment.first_seq,
      lastSeq: segment.last_seq,
      bytes: segment.bytes,
    };
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  let lastSeq = afterSeq;
  const cursor = sql.exec<{ last_seq: number; records: ArrayBuffer }>(
    "SELECT last_seq, records FROM hot_log WHERE last_seq > ? ORDER BY first_seq",
    afterSeq,
  );
  for (const row of cursor) {
    const records = recordsAfter(new Uint8Array(row.records), afterSeq);
    if (total > 0 && total + records.byteLength > maxBytes) break;
    parts.push(records);
    total += records.byteLength;
    lastSeq = row.last_seq;
    if (total >= maxBytes) break;
  }
  if (parts.length === 0) {
    // nothing hot after afterSeq although the head is further: only possible if a segment
    // starts beyond afterSeq + 1, i.e. the log has a hole, which appends never create
    return { kind: "trimmed", trimmedThrough: segment ? segment.first_seq - 1 : headSeq };
  }
  const records = parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(parts);
  return { kind: "hot", records, lastSeq };
}
