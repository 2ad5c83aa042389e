// The identity cache's copy in the ingester's SQLite: one row per flush holding every document
// kept and every invalidation since the previous flush, keyed by an increasing time. Loading
// applies the rows in key order, so a later row wins: a newer document replaces an older one and
// an invalidation forgets every copy before it. A row per document fetched was ~43 M rows a
// month at full network (docs/cost.md); rows per flush do not grow with the documents fetched.
// Rows are dropped once older than the cache's TTL. The copy only saves look-ups after a restart:
// losing it costs PLC requests, never a wrong verdict.

/** A document as kept: the fields a verdict needs, and when it was fetched. */
export type KeptDocument = {
  did: string;
  pds: string | null;
  handle: string | null;
  /** did:key form of the signing key. */
  key: string | null;
  fetchedMs: number;
};

/** An invalidation: every earlier copy of the DID is forgotten. */
export type Forgotten = { did: string; forgotten: true };

/**
 * Records per row: a row is at most 2 MB (Durable Object SQLite) and a record is ~200 bytes of
 * JSON, so a catch-up that resolves thousands of accounts between two flushes still fits.
 */
export const IDENTITY_BATCH_DOCUMENTS = 2_000;

// WITHOUT ROWID: a write is one billed row (a rowid table also writes its implicit key index).
// `identity_docs` (a row per document) and `identity` were earlier layouts; being caches, they
// are simply dropped.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS identity_batches (
  batch_ms INTEGER PRIMARY KEY,
  records TEXT NOT NULL
) WITHOUT ROWID;
DROP TABLE IF EXISTS identity_docs;
DROP TABLE IF EXISTS identity;`;

export class IdentityBatches {
  /** The lowest key stored, so a flush deletes only when a row has expired. */
  #oldestMs: number | null;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(SCHEMA);
    this.#oldestMs = this.#oldest();
  }

  #oldest(): number | null {
    return (
      this.sql
        .exec<{ oldest: number | null }>("SELECT MIN(batch_ms) AS oldest FROM identity_batches")
        .toArray()[0]?.oldest ?? null
    );
  }

  /** Every kept document not forgotten since, by DID. */
  load(): Map<string, KeptDocument> {
    const docs = new Map<string, KeptDocument>();
    for (const row of this.sql.exec<{ records: string }>(
      "SELECT records FROM identity_batches ORDER BY batch_ms",
    )) {
      for (const record of JSON.parse(row.records) as (KeptDocument | Forgotten)[]) {
        if ("forgotten" in record) docs.delete(record.did);
        else docs.set(record.did, record);
      }
    }
    return docs;
  }

  /**
   * One row per IDENTITY_BATCH_DOCUMENTS records, keyed after every row already stored (two
   * caches over one storage, or a clock that stepped back, cannot reorder them).
   */
  write(records: (KeptDocument | Forgotten)[], nowMs: number): void {
    for (let i = 0; i < records.length; i += IDENTITY_BATCH_DOCUMENTS) {
      this.sql.exec(
        `INSERT INTO identity_batches (batch_ms, records)
         SELECT MAX(?, COALESCE(MAX(batch_ms), 0) + 1), ? FROM identity_batches`,
        nowMs,
        JSON.stringify(records.slice(i, i + IDENTITY_BATCH_DOCUMENTS)),
      );
    }
    this.#oldestMs ??= nowMs;
  }

  /**
   * Drops the rows written before `cutoffMs`. An invalidation dropped this way only forgets
   * copies in rows older still, which are dropped with it or before it.
   */
  dropOlderThan(cutoffMs: number): void {
    if (this.#oldestMs === null || this.#oldestMs >= cutoffMs) return;
    this.sql.exec("DELETE FROM identity_batches WHERE batch_ms < ?", cutoffMs);
    this.#oldestMs = this.#oldest();
  }
}
