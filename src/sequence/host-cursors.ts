import { sealedThrough } from "./hot-log";

// Per-host upstream cursors (the last upstream seq sequenced for each host: what makes retried
// and resent batches exactly-once) and per-host reset epochs (what makes an admin cursor reset
// stick).
//
// A cursor lives in three places: the `cursors` JSON of the hot-log row that ends the batch
// which moved it (no extra row write per batch), the `host_cursor_snapshot` row (every host, one row) written when
// those rows are sealed, and the Sequencer's memory. A reset has to reach all three, and two things
// could bring the old value back afterwards:
//   - a seal in flight: it reads its rows, awaits the R2 put, then snapshots their cursors. The
//     snapshot therefore re-reads the rows' cursors inside its final transaction
//     (`snapshotHostCursors`), after the reset has removed the host from them.
//   - events of the old numbering that were already on their way (an ingester's pending batch,
//     or its flush of them during the reset). A batch may say which reset epoch of each host it
//     was read under (`appendBatch({ hostEpochs })`); events of a host read under an older
//     epoch than the Sequencer's are refused (`CursorReset`) and never move the cursor.

/**
 * Every host's cursor as of the last seal: the snapshot row, over the rows of the earlier
 * one-row-per-host layout (emptied at the first snapshot written).
 */
export function readCursorSnapshot(sql: SqlStorage): Map<string, number> {
  const cursors = new Map<string, number>();
  for (const row of sql.exec<{ host: string; upstream_seq: number }>(
    "SELECT host, upstream_seq FROM host_cursor",
  ))
    cursors.set(row.host, row.upstream_seq);
  const row = sql
    .exec<{ cursors: string }>("SELECT cursors FROM host_cursor_snapshot WHERE id = 1")
    .toArray()[0];
  if (row)
    for (const [host, seq] of Object.entries(JSON.parse(row.cursors) as Record<string, number>))
      cursors.set(host, seq);
  return cursors;
}

/** Writes every host's cursor as one row (one billed row, whatever the number of hosts). */
export function writeCursorSnapshot(sql: SqlStorage, cursors: ReadonlyMap<string, number>): void {
  sql.exec(
    "INSERT INTO host_cursor_snapshot (id, cursors) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET cursors = excluded.cursors",
    JSON.stringify(Object.fromEntries(cursors)),
  );
  // the earlier layout's rows are in the snapshot now (no row: billed nothing)
  sql.exec("DELETE FROM host_cursor");
}

export function loadHostCursors(sql: SqlStorage): Map<string, number> {
  const cursors = readCursorSnapshot(sql);
  // then the cursors carried by the rows still hot, oldest first (later rows win); sealed rows
  // kept for reuse are older than the snapshot and may predate a reset: not read
  for (const row of sql.exec<{ cursors: string }>(
    "SELECT cursors FROM hot_log WHERE first_seq > ? AND cursors IS NOT NULL ORDER BY first_seq",
    sealedThrough(sql),
  )) {
    for (const [host, seq] of Object.entries(JSON.parse(row.cursors) as Record<string, number>)) {
      cursors.set(host, seq);
    }
  }
  return cursors;
}

/**
 * Folds the cursors of the hot rows in [firstSeq, lastSeq] into the cursor snapshot (one row).
 * Call inside the transaction that deletes those rows: the cursors are read there, not before
 * the seal's R2 put, so a reset made while the put was in flight is not undone.
 */
export function snapshotHostCursors(sql: SqlStorage, firstSeq: number, lastSeq: number): void {
  const latest = new Map<string, number>();
  for (const row of sql.exec<{ cursors: string }>(
    "SELECT cursors FROM hot_log WHERE first_seq >= ? AND last_seq <= ? AND cursors IS NOT NULL ORDER BY first_seq",
    firstSeq,
    lastSeq,
  )) {
    for (const [host, seq] of Object.entries(JSON.parse(row.cursors) as Record<string, number>))
      latest.set(host, seq);
  }
  if (latest.size === 0) return;
  const snapshot = readCursorSnapshot(sql);
  for (const [host, seq] of latest) snapshot.set(host, seq);
  writeCursorSnapshot(sql, snapshot);
}

export function loadHostEpochs(sql: SqlStorage): Map<string, number> {
  const epochs = new Map<string, number>();
  for (const row of sql.exec<{ host: string; epoch: number }>("SELECT host, epoch FROM host_epoch"))
    epochs.set(row.host, row.epoch);
  return epochs;
}

/**
 * Forgets a host's cursor everywhere it is kept and starts its next reset epoch, in one
 * transaction (admin recovery after a PDS reset its seq). Returns the new epoch.
 */
export function resetHostCursor(storage: DurableObjectStorage, host: string): number {
  const sql = storage.sql;
  const path = `$."${host}"`;
  return storage.transactionSync(() => {
    const snapshot = readCursorSnapshot(sql);
    if (snapshot.delete(host)) writeCursorSnapshot(sql, snapshot);
    sql.exec(
      "UPDATE hot_log SET cursors = json_remove(cursors, ?) WHERE first_seq > ? AND cursors IS NOT NULL AND json_extract(cursors, ?) IS NOT NULL",
      path,
      sealedThrough(sql),
      path,
    );
    const row = sql
      .exec<{ epoch: number }>(
        `INSERT INTO host_epoch (host, epoch) VALUES (?, 1)
         ON CONFLICT(host) DO UPDATE SET epoch = epoch + 1 RETURNING epoch`,
        host,
      )
      .toArray()[0];
    return row?.epoch ?? 1;
  });
}
