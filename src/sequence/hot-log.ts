import { encodeRecords, firstRecordByteLength, type LogRecord, recordsAfter } from "../log/records";
import { pushAnchor, rowFirstUs, type TimeAnchor } from "../log/time-anchors";
import { concatBytes } from "../protocol/bytes";
import { MAX_FRAME_BYTES } from "../protocol/limits";
import { rewriteFrameSeq } from "../protocol/seq-rewrite";
import type { AppendResult, DroppedEvent, IngestEvent } from "./append-codec";
import { readCursorSnapshot, writeCursorSnapshot } from "./host-cursors";

// The Sequencer's SQLite tables and the functions over them. One row per group commit in
// `hot_log` (rows written are billed: DESIGN.md "Cost shapes the design"), per-host upstream
// cursors written in the same transaction so a retried batch is recognised, and the index of
// sealed R2 segments (R2 `list` is billed and is not the index).
//
// Sealed rows are not deleted (a delete is billed one row per row): they stay in `hot_log` as
// stale rows, below `sealedThrough`, and the next append takes the oldest one over by rewriting
// its key and columns (`UPDATE`, 1 row written, measured in docs/cost.md) instead of inserting.
// Every reader of the hot log therefore looks only above `sealedThrough`.

/** SQLite BLOBs in Durable Objects are capped at 2 MB; stay clearly under. */
export const MAX_HOT_ROW_BYTES = 1_900_000;

/**
 * The largest frame the Sequencer stores: the lexicon's per-message limit, which the ingester
 * enforces on the upstream frame, plus 8 bytes because the relay's seq may take up to 8 bytes
 * more CBOR than the upstream one (1-byte to 9-byte unsigned integer). A frame over
 * MAX_HOT_ROW_BYTES is spread over overflow rows (`hot_log_overflow`), so everything up to this
 * bound is storable; anything larger is refused as `TooBigToStore`, that event alone.
 */
export const MAX_STORED_FRAME_BYTES = MAX_FRAME_BYTES + 8;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS hot_log (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  records BLOB NOT NULL,
  -- JSON {host: last upstream seq} of the hosts whose events end in this row (last row of a batch)
  cursors TEXT,
  -- unix µs of the row's first event; its events have consecutive µs (log/time-anchors.ts).
  -- NULL in rows written before times were kept: created_ms * 1000 stands in (ROW_FIRST_US)
  first_us INTEGER
);
-- the rest of a record too large for one hot_log row (that row then holds exactly one record,
-- cut after MAX_HOT_ROW_BYTES): parts 1, 2, ... in order, each at most MAX_HOT_ROW_BYTES
CREATE TABLE IF NOT EXISTS hot_log_overflow (
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (seq, part)
);
CREATE TABLE IF NOT EXISTS host_cursor (host TEXT PRIMARY KEY, upstream_seq INTEGER NOT NULL);
-- every host's cursor as of the last seal, as one JSON row (host-cursors.ts): one row written per
-- seal, not two per host (host_cursor, a rowid table, is the earlier layout, read and emptied)
CREATE TABLE IF NOT EXISTS host_cursor_snapshot (id INTEGER PRIMARY KEY, cursors TEXT NOT NULL);
-- per host, how many times an admin has reset its cursor (host-cursors.ts)
CREATE TABLE IF NOT EXISTS host_epoch (host TEXT PRIMARY KEY, epoch INTEGER NOT NULL);
-- DIDs the relay's admin has taken down (takedowns.ts)
CREATE TABLE IF NOT EXISTS takedowns (did TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  first_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  -- unix µs of the last event, and the time anchors of the segment's rows (encodeAnchors),
  -- both NULL in segments sealed before times were kept (their times are estimated)
  last_us INTEGER,
  time_anchors BLOB
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fanouts (name TEXT PRIMARY KEY);
`;

/** Columns added to tables of the first schema: added in place to a log created before them. */
const ADDED_COLUMNS: { table: string; column: string; type: string }[] = [
  { table: "hot_log", column: "first_us", type: "INTEGER" },
  { table: "segments", column: "last_us", type: "INTEGER" },
  { table: "segments", column: "time_anchors", type: "BLOB" },
];

/** Creates the Sequencer's tables, or adds the columns a log created by an older relay lacks. */
export function applySchema(sql: SqlStorage): void {
  sql.exec(SCHEMA);
  for (const { table, column, type } of ADDED_COLUMNS) {
    const present = sql
      .exec<{ n: number }>(
        "SELECT COUNT(*) AS n FROM pragma_table_info(?) WHERE name = ?",
        table,
        column,
      )
      .toArray()[0];
    if (!present?.n) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }
}

/** A hot row's first time, for rows written before `first_us` too. */
export const ROW_FIRST_US = "COALESCE(first_us, created_ms * 1000)";

export type { AppendResult, DroppedEvent, IngestEvent } from "./append-codec";

export type AppendedRows = {
  firstSeq: number;
  lastSeq: number;
  /** Unix µs of the row's first event; the others follow one µs apart (log/time-anchors.ts). */
  firstUs: number;
  records: Uint8Array;
}[];

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
 * The time of the newest event ever sequenced (unix µs), from what is stored, so times go on
 * increasing across restarts and a wall clock that went back. The newest row written is the
 * newest hot row (a reused row takes the newest key), else, before any, the newest segment; 0 for
 * an empty log. After retention removed everything the clock is all there is, days later.
 */
export function loadLastTimeUs(sql: SqlStorage): number {
  const row = sql
    .exec<{ us: number }>(
      `SELECT MAX(
         COALESCE((SELECT ${ROW_FIRST_US} + last_seq - first_seq FROM hot_log
                   ORDER BY first_seq DESC LIMIT 1), 0),
         COALESCE((SELECT COALESCE(last_us, last_ms * 1000) FROM segments
                   ORDER BY first_seq DESC LIMIT 1), 0)) AS us`,
    )
    .toArray()[0];
  return row?.us ?? 0;
}

/**
 * Below this seq nothing is retained: everything up to it was deleted by retention
 * (`trimmed_through`), or was never written by this log because it starts at FIRST_SEQ (after a
 * data loss the operator restarts well above the old maximum, so old cursors arrive). A reader
 * positioned before it is outdated and continues from it.
 */
export function retainedFloor(sql: SqlStorage, firstSeq: number): number {
  return Math.max(readMeta(sql, "trimmed_through") ?? 0, firstSeq - 1);
}

/**
 * The newest seq that is sealed into R2 (or trimmed after that): hot-log rows at or below it
 * are stale, kept only to be reused. Seals take the oldest rows and record their segment in the
 * transaction that used to delete them; retention records `trimmed_through` before it deletes a
 * segment's index entry; so every unsealed seq is above this and every sealed one at or below.
 */
export function sealedThrough(sql: SqlStorage): number {
  const row = sql
    .exec<{ s: number }>(
      `SELECT MAX(
         COALESCE((SELECT last_seq FROM segments ORDER BY first_seq DESC LIMIT 1), 0),
         COALESCE((SELECT value FROM meta WHERE key = 'trimmed_through'), 0)) AS s`,
    )
    .toArray()[0];
  return row?.s ?? 0;
}

/** Bytes the hot log holds, overflow parts included (what the next seals will write). */
export function hotLogBytes(sql: SqlStorage): number {
  const sealed = sealedThrough(sql);
  const row = sql
    .exec<{ b: number | null }>(
      `SELECT (SELECT COALESCE(SUM(length(records)), 0) FROM hot_log WHERE first_seq > ?)
            + (SELECT COALESCE(SUM(length(bytes)), 0) FROM hot_log_overflow WHERE seq > ?) AS b`,
      sealed,
      sealed,
    )
    .toArray()[0];
  return row?.b ?? 0;
}

/**
 * Writes one row of records, in the caller's transaction: over the oldest stale row if there is
 * one (its key becomes the new first seq: 1 row written, where a delete at seal and an insert
 * here would be 2), else as a new row. The `WHERE` only matches a row at or below `sealed`, so
 * an unsealed row is never overwritten. A row longer than MAX_HOT_ROW_BYTES holds a single
 * record (appendGroup makes it so): its first MAX_HOT_ROW_BYTES go into `hot_log`, the rest
 * into `hot_log_overflow` parts.
 */
function writeHotRow(
  sql: SqlStorage,
  row: AppendedRows[number],
  nowMs: number,
  cursors: string | null,
  sealed: number,
): void {
  const { records } = row;
  const spills = records.byteLength > MAX_HOT_ROW_BYTES;
  const head = spills ? records.slice(0, MAX_HOT_ROW_BYTES) : records;
  const reused = sql.exec(
    `UPDATE hot_log SET first_seq = ?, last_seq = ?, created_ms = ?, records = ?, cursors = ?,
       first_us = ?
     WHERE first_seq = (SELECT MIN(first_seq) FROM hot_log) AND last_seq <= ?`,
    row.firstSeq,
    row.lastSeq,
    nowMs,
    head,
    cursors,
    row.firstUs,
    sealed,
  );
  reused.toArray();
  if (reused.rowsWritten === 0) {
    sql.exec(
      "INSERT INTO hot_log (first_seq, last_seq, created_ms, records, cursors, first_us) VALUES (?, ?, ?, ?, ?, ?)",
      row.firstSeq,
      row.lastSeq,
      nowMs,
      head,
      cursors,
      row.firstUs,
    );
  }
  if (!spills) return;
  let part = 1;
  for (let offset = MAX_HOT_ROW_BYTES; offset < records.byteLength; offset += MAX_HOT_ROW_BYTES) {
    sql.exec(
      "INSERT INTO hot_log_overflow (seq, part, bytes) VALUES (?, ?, ?)",
      row.firstSeq,
      part++,
      records.slice(offset, offset + MAX_HOT_ROW_BYTES),
    );
  }
}

/**
 * The whole records of a stored hot-log row: its BLOB, plus its overflow parts when the BLOB
 * holds only the start of its one record (seen from the record's length header alone).
 */
export function hotRowRecords(sql: SqlStorage, firstSeq: number, stored: ArrayBuffer): Uint8Array {
  const head = new Uint8Array(stored);
  const firstRecord = firstRecordByteLength(head);
  if (firstRecord === null || firstRecord <= head.byteLength) return head;
  const parts = [head];
  for (const row of sql.exec<{ bytes: ArrayBuffer }>(
    "SELECT bytes FROM hot_log_overflow WHERE seq = ? ORDER BY part",
    firstSeq,
  )) {
    parts.push(new Uint8Array(row.bytes));
  }
  return concatBytes(parts);
}

/**
 * Every new event of a batch was refused, but their upstream seqs are sequenced all the same,
 * and with no row of its own the batch's cursors ride in the newest hot row (later rows win
 * when cursors are loaded, so they must not go anywhere older); with no hot row at all, the
 * snapshot is the newest place.
 */
function storeRefusedCursors(sql: SqlStorage, cursorsJson: string, sealed: number): void {
  const newest = sql
    .exec<{ first_seq: number }>(
      "SELECT first_seq FROM hot_log WHERE first_seq > ? ORDER BY first_seq DESC LIMIT 1",
      sealed,
    )
    .toArray()[0];
  if (newest) {
    sql.exec(
      "UPDATE hot_log SET cursors = json_patch(COALESCE(cursors, '{}'), ?) WHERE first_seq = ?",
      cursorsJson,
      newest.first_seq,
    );
    return;
  }
  const snapshot = readCursorSnapshot(sql);
  for (const [host, upstreamSeq] of Object.entries(
    JSON.parse(cursorsJson) as Record<string, number>,
  ))
    snapshot.set(host, upstreamSeq);
  writeCursorSnapshot(sql, snapshot);
}

/** What the Sequencer holds in memory and appendEvents decides by. */
export type SequencerView = {
  headSeq: number;
  /** Per host, the last upstream seq sequenced. */
  hostCursors: ReadonlyMap<string, number>;
  /** Per host, its reset epoch (absent: 0, never reset). */
  hostEpochs: ReadonlyMap<string, number>;
  /** DIDs taken down by the relay's admin. */
  takedowns: ReadonlySet<string>;
  /** Unix µs of the newest event sequenced (loadLastTimeUs): the next row starts after it. */
  lastTimeUs: number;
};

export type AppendOptions = {
  nowMs: number;
  /**
   * Per host, the reset epoch under which the batch's events of that host were read. Events of
   * a host given an epoch older than the Sequencer's were read before an admin reset the host's
   * cursor: they are refused (`CursorReset`) and do not move the cursor. A host not listed is
   * not checked.
   */
  hostEpochs?: Readonly<Record<string, number>>;
  /** More writes to commit in the same transaction as the events (an admin takedown). */
  inTransaction?: (sql: SqlStorage) => void;
};

/** One caller's batch in a group commit (appendGroup). */
export type AppendRequest = Omit<AppendOptions, "nowMs"> & { events: readonly IngestEvent[] };

/**
 * Assigns seqs to the events of a batch that are new (upstream seq above the host's cursor),
 * rewrites each frame's seq, and appends them with the updated host cursors in one transaction.
 * A single-batch group commit: see appendGroup.
 */
export function appendEvents(
  storage: DurableObjectStorage,
  events: readonly IngestEvent[],
  view: SequencerView,
  options: AppendOptions,
): { result: AppendResult; rows: AppendedRows; headSeq: number; lastTimeUs: number } {
  const { nowMs, ...rest } = options;
  const { results, rows, headSeq, lastTimeUs } = appendGroup(
    storage,
    [{ ...rest, events }],
    view,
    nowMs,
  );
  return { result: results[0] as AppendResult, rows, headSeq, lastTimeUs };
}

/**
 * Appends the batches of several callers in one transaction, as one run of hot-log rows (one
 * row unless their records pass MAX_HOT_ROW_BYTES): a group commit. Each batch is decided as if
 * it had been appended alone, in the order given: seqs follow that order, a batch's duplicates
 * are judged against the cursors the earlier batches of the group moved, and each gets its own
 * result. The host cursors of the whole group ride in its last row.
 *
 * One event can never fail a batch: an event of a taken-down DID (`RepoTakendown`), one whose
 * frame has no seq to rewrite (`InvalidEvent:<name>`), or one over MAX_STORED_FRAME_BYTES
 * (`TooBigToStore`) is left out and reported in `dropped`; its upstream seq still counts as
 * sequenced, so it is never offered again. Events read before an admin reset of their host's
 * cursor (`AppendRequest.hostEpochs`) are reported as `CursorReset` and do not move the cursor.
 *
 * Each row is timed (log/time-anchors.ts): it starts at `nowMs`, or 1 µs after the view's
 * `lastTimeUs` if that is later, and its events follow 1 µs apart.
 *
 * Pure bookkeeping over `storage`; the caller owns the view and adopts the returned `headSeq`,
 * `lastTimeUs` and every `result.hostCursors` only on success (the transaction rolls back on a throw, for
 * every batch of the group).
 */
export function appendGroup(
  storage: DurableObjectStorage,
  requests: readonly AppendRequest[],
  view: SequencerView,
  nowMs: number,
): { results: AppendResult[]; rows: AppendedRows; headSeq: number; lastTimeUs: number } {
  let seq = view.headSeq;
  let lastTimeUs = view.lastTimeUs;
  const touched = new Map<string, number>();
  const rows: AppendedRows = [];
  const results: AppendResult[] = [];
  let current: LogRecord[] = [];
  let currentBytes = 0;
  const flushRow = () => {
    if (current.length === 0) return;
    const first = current[0] as LogRecord;
    const last = current[current.length - 1] as LogRecord;
    const firstUs = rowFirstUs(nowMs, lastTimeUs);
    lastTimeUs = firstUs + (last.seq - first.seq);
    rows.push({ firstSeq: first.seq, lastSeq: last.seq, firstUs, records: encodeRecords(current) });
    current = [];
    currentBytes = 0;
  };
  for (const request of requests) {
    const batchHead = seq;
    let duplicates = 0;
    const dropped: DroppedEvent[] = [];
    for (const event of request.events) {
      const { host, upstreamSeq } = event;
      if (host !== "") {
        const readUnder = request.hostEpochs?.[host];
        if (readUnder !== undefined && readUnder < (view.hostEpochs.get(host) ?? 0)) {
          dropped.push({ host, upstreamSeq, reason: "CursorReset" });
          continue;
        }
        const known = touched.get(host) ?? view.hostCursors.get(host);
        if (known !== undefined && upstreamSeq <= known) {
          duplicates++;
          continue;
        }
        touched.set(host, upstreamSeq);
      }
      // relay-made events (host "") are the takedown's own #account
      if (host !== "" && view.takedowns.has(event.did)) {
        dropped.push({ host, upstreamSeq, reason: "RepoTakendown" });
        continue;
      }
      let frame: Uint8Array;
      try {
        frame = rewriteFrameSeq(event.frame, seq + 1);
      } catch (err) {
        dropped.push({ host, upstreamSeq, reason: `InvalidEvent:${(err as Error).name}` });
        continue;
      }
      if (frame.byteLength > MAX_STORED_FRAME_BYTES) {
        dropped.push({ host, upstreamSeq, reason: "TooBigToStore" });
        continue;
      }
      seq += 1;
      const recordBytes = frame.byteLength + 12;
      // a record too large for a row of its own gets a row of its own, spilled (writeHotRow)
      if (currentBytes + recordBytes > MAX_HOT_ROW_BYTES) flushRow();
      current.push({ seq, frame });
      currentBytes += recordBytes;
      if (currentBytes > MAX_HOT_ROW_BYTES) flushRow();
    }
    const hostCursors: Record<string, number> = {};
    for (const event of request.events) {
      if (event.host === "") continue;
      const value = touched.get(event.host) ?? view.hostCursors.get(event.host);
      if (value !== undefined) hostCursors[event.host] = value;
    }
    const accepted = seq - batchHead;
    results.push({
      accepted,
      duplicates,
      firstSeq: accepted > 0 ? batchHead + 1 : null,
      lastSeq: accepted > 0 ? seq : null,
      hostCursors,
      dropped,
    });
  }
  flushRow();
  const sql = storage.sql;
  const cursorsJson = touched.size > 0 ? JSON.stringify(Object.fromEntries(touched)) : null;
  storage.transactionSync(() => {
    const sealed = sealedThrough(sql);
    rows.forEach((row, i) => {
      writeHotRow(sql, row, nowMs, i === rows.length - 1 ? cursorsJson : null, sealed);
    });
    if (rows.length === 0 && cursorsJson !== null) storeRefusedCursors(sql, cursorsJson, sealed);
    for (const request of requests) request.inTransaction?.(sql);
  });
  return { results, rows, headSeq: seq, lastTimeUs };
}

export type LogRead =
  | { kind: "caughtUp"; headSeq: number }
  | {
      kind: "segment";
      key: string;
      firstSeq: number;
      lastSeq: number;
      bytes: number;
      /** The time anchors of its rows, packed (log/time-anchors.ts encodeAnchors). */
      anchors: Uint8Array | null;
      /**
       * The group commits of its first and last rows: the only times of a segment sealed before
       * anchors were kept (`anchors` null), estimated from them (jetstream/time.ts).
       */
      firstMs: number;
      lastMs: number;
    }
  | {
      kind: "hot";
      records: Uint8Array;
      lastSeq: number;
      /** The time anchors of the rows read, in seq order (log/time-anchors.ts). */
      anchors: TimeAnchor[];
    }
  | { kind: "trimmed"; trimmedThrough: number };

/**
 * What a reader positioned after `afterSeq` reads next: a sealed segment to fetch from R2, or
 * up to `maxBytes` of hot records from SQLite (at least one record, however large). Answered
 * from one consistent view of the log, so a reader that loops on it never sees a gap even
 * while seals and trims run.
 *
 * A reader before `retainedFloor` (trimmed by retention, or before FIRST_SEQ) is told
 * `trimmed`: it continues from the floor, i.e. from the oldest retained event. Every sealed
 * segment holds older seqs than every hot row (seals take the oldest rows), so the first
 * segment that ends after `afterSeq` is always what comes next, wherever it starts.
 */
export function readLog(
  sql: SqlStorage,
  afterSeq: number,
  maxBytes: number,
  headSeq: number,
  firstSeq: number,
  segmentKey: (firstSeq: number) => string,
): LogRead {
  if (afterSeq >= headSeq) return { kind: "caughtUp", headSeq };
  const floor = retainedFloor(sql, firstSeq);
  if (afterSeq < floor) return { kind: "trimmed", trimmedThrough: floor };
  const segment = sql
    .exec<{
      first_seq: number;
      last_seq: number;
      bytes: number;
      first_ms: number;
      last_ms: number;
      time_anchors: ArrayBuffer | null;
    }>(
      "SELECT first_seq, last_seq, bytes, first_ms, last_ms, time_anchors FROM segments WHERE last_seq > ? ORDER BY first_seq LIMIT 1",
      afterSeq,
    )
    .toArray()[0];
  if (segment) {
    return {
      kind: "segment",
      key: segmentKey(segment.first_seq),
      firstSeq: segment.first_seq,
      lastSeq: segment.last_seq,
      bytes: segment.bytes,
      anchors: segment.time_anchors ? new Uint8Array(segment.time_anchors) : null,
      firstMs: segment.first_ms,
      lastMs: segment.last_ms,
    };
  }
  const parts: Uint8Array[] = [];
  const anchors: TimeAnchor[] = [];
  let total = 0;
  let lastSeq = afterSeq;
  // afterSeq is at or past the last sealed seq here (no segment ends after it), so this never
  // reads a stale row; the bound says so and lets the primary key skip them
  const cursor = sql.exec<{
    first_seq: number;
    last_seq: number;
    first_us: number;
    records: ArrayBuffer;
  }>(
    `SELECT first_seq, last_seq, ${ROW_FIRST_US} AS first_us, records FROM hot_log
     WHERE first_seq > ? AND last_seq > ? ORDER BY first_seq`,
    sealedThrough(sql),
    afterSeq,
  );
  for (const row of cursor) {
    const records = recordsAfter(hotRowRecords(sql, row.first_seq, row.records), afterSeq);
    if (total > 0 && total + records.byteLength > maxBytes) break;
    parts.push(records);
    pushAnchor(anchors, { firstSeq: row.first_seq, firstUs: row.first_us });
    total += records.byteLength;
    lastSeq = row.last_seq;
    if (total >= maxBytes) break;
  }
  if (parts.length === 0) {
    // nothing stored after afterSeq although the head is further: only a hole in the log
    // (which appends never create) could do that; send the reader to the head
    return { kind: "trimmed", trimmedThrough: headSeq };
  }
  const records = parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(parts);
  return { kind: "hot", records, lastSeq, anchors };
}
