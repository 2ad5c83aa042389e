import { decodeFirst, encode } from "cborg";
import { type Bloom, bloomAdd, bloomMayHave, newBloom } from "./bloom";

// A key-value store over Durable Object SQLite whose rows written do not grow with the number
// of keys changed or stored: rows written are billed per row ($1/M) and rows read ~1000x less
// (docs/cost.md), so many entries are packed into each row, as a tiered LSM tree does.
//
//   - `<name>_delta`: one row per `writeDelta` (every entry changed since the last one, plus an
//     opaque `extra` of the caller's, e.g. the cursors the entries match), written inside the
//     caller's transaction. Kept in memory too (`recent`).
//   - `<name>_run` / `<name>_run_meta`: sorted runs of ~64 KB chunks. When `recent` is big
//     enough, it is written as a run of level 0 and the deltas it came from are deleted, in one
//     transaction. When a level holds RUNS_PER_LEVEL runs they are merged (newest value of a
//     key wins) into one run of the next level. Each run's first key per chunk and a Bloom
//     filter are kept in memory, so a lookup reads at most one chunk per run, and usually none.
//
// Rows written per entry ≈ 2 × levels / entries per chunk (each level writes a chunk once and
// deletes it once); a delta row per writeDelta. Lookups: recent → cache → runs, newest first.
// Values are anything cborg encodes (no `undefined`). Keys are ordered as JS strings compare.

export type PackedStoreOptions = {
  /** `recent` entries at which compaction is due. */
  compactAtEntries: number;
  /** Delta rows at which compaction is due (bounds what a restart replays). */
  compactAtDeltas: number;
  /** Target encoded bytes of a run chunk (one row). */
  chunkBytes: number;
  /** Runs of one level that are merged into one run of the next. */
  runsPerLevel: number;
  /** Entries read from runs kept in memory. */
  cacheEntries: number;
};

export const DEFAULT_PACKED_STORE_OPTIONS: PackedStoreOptions = {
  compactAtEntries: 20_000,
  compactAtDeltas: 120,
  chunkBytes: 64 * 1024,
  runsPerLevel: 4,
  cacheEntries: 50_000,
};

/** A Durable Object SQLite value (a row) is limited to 2 MB: bigger bodies are split. */
const MAX_ROW_BYTES = 1_000_000;

type Run = {
  id: number;
  level: number;
  entries: number;
  /** First key of each chunk. */
  chunkKeys: string[];
  bloom: Bloom;
};

type Item<V> = { key: string; value: V; raw: Uint8Array };

export type PackedStoreStats = {
  recent: number;
  deltas: number;
  runs: { level: number; entries: number; chunks: number }[];
  /** Run chunks read since construction (a lookup the Bloom filters rule out reads none). */
  chunksRead: number;
};

export class PackedStore<V> {
  readonly #sql: SqlStorage;
  readonly #options: PackedStoreOptions;
  readonly #delta: string;
  readonly #run: string;
  readonly #meta: string;
  /** Every entry of the delta rows not yet compacted (newest value). */
  readonly #recent = new Map<string, V>();
  #recentSorted: string[] | null = null;
  #deltaRows = 0;
  /** Newest first: lower level first, then higher id. */
  #runs: Run[] = [];
  #nextRunId = 1;
  readonly #cache = new Map<string, V>();
  #chunksRead = 0;
  /** The `extra` of each delta row replayed at construction, in the order written. */
  readonly replayedExtras: unknown[] = [];

  constructor(
    private readonly storage: DurableObjectStorage,
    name: string,
    options: Partial<PackedStoreOptions> = {},
  ) {
    this.#sql = storage.sql;
    this.#options = { ...DEFAULT_PACKED_STORE_OPTIONS, ...options };
    this.#delta = `${name}_delta`;
    this.#run = `${name}_run`;
    this.#meta = `${name}_run_meta`;
    // WITHOUT ROWID on the composite keys: an insert is billed one row (docs/cost.md)
    this.#sql.exec(`
CREATE TABLE IF NOT EXISTS ${this.#delta} (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ${this.#run} (run_id INTEGER NOT NULL, chunk INTEGER NOT NULL,
  first_key TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (run_id, chunk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ${this.#meta} (run_id INTEGER NOT NULL, part INTEGER NOT NULL,
  body BLOB NOT NULL, PRIMARY KEY (run_id, part)) WITHOUT ROWID;`);
    this.#loadRuns();
    this.#replayDeltas();
  }

  #loadRuns(): void {
    const parts = new Map<number, Uint8Array[]>();
    for (const row of this.#sql.exec<{ run_id: number; body: ArrayBuffer }>(
      `SELECT run_id, body FROM ${this.#meta} ORDER BY run_id, part`,
    )) {
      const list = parts.get(row.run_id) ?? [];
      list.push(new Uint8Array(row.body));
      parts.set(row.run_id, list);
    }
    for (const [id, list] of parts) {
      const meta = decodeFirst(concat(list))[0] as {
        level: number;
        entries: number;
        chunkKeys: string[];
        bloom: Uint8Array;
        hashes: number;
      };
      this.#runs.push({
        id,
        level: meta.level,
        entries: meta.entries,
        chunkKeys: meta.chunkKeys,
        bloom: { bits: meta.bloom, hashes: meta.hashes },
      });
      this.#nextRunId = Math.max(this.#nextRunId, id + 1);
    }
    // chunks of a run whose meta was never written (cannot happen inside one transaction, but
    // a run id is only ever used once, so leftovers would be harmless garbage): not read
    this.#sortRuns();
  }

  #replayDeltas(): void {
    for (const row of this.#sql.exec<{ body: ArrayBuffer }>(
      `SELECT body FROM ${this.#delta} ORDER BY id`,
    )) {
      this.#deltaRows++;
      let rest: Uint8Array = new Uint8Array(row.body);
      const [extra, afterExtra] = decodeFirst(rest);
      rest = afterExtra;
      while (rest.length > 0) {
        const [[key, value], next] = decodeFirst(rest) as [[string, V], Uint8Array];
        this.#recent.set(key, value);
        rest = next;
      }
      if (extra !== null) this.replayedExtras.push(extra);
    }
  }

  #sortRuns(): void {
    this.#runs.sort((a, b) => a.level - b.level || b.id - a.id);
  }

  // ---- reads ---------------------------------------------------------------------------------

  get(key: string): V | undefined {
    const recent = this.#recent.get(key);
    if (recent !== undefined) return recent;
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return cached;
    }
    for (const run of this.#runs) {
      if (!bloomMayHave(run.bloom, key)) continue;
      const chunk = lastAtOrBefore(run.chunkKeys, key);
      if (chunk < 0) continue;
      for (const item of this.#chunkItems(run.id, chunk)) {
        if (item.key < key) continue;
        if (item.key === key) {
          this.#remember(key, item.value);
          return item.value;
        }
        break;
      }
    }
    return undefined;
  }

  /** Whether `key` is in memory (recent or cache): a get() of it reads nothing. */
  inMemory(key: string): boolean {
    return this.#recent.has(key) || this.#cache.has(key);
  }

  /** Entries after `afterKey` in key order (newest value of each), at most `limit` that pass. */
  scan(
    afterKey: string,
    limit: number,
    filter?: (key: string, value: V) => boolean,
  ): [string, V][] {
    const out: [string, V][] = [];
    if (limit <= 0) return out;
    this.#recentSorted ??= [...this.#recent.keys()].sort(compareKeys);
    const sorted = this.#recentSorted;
    let r = upperBound(sorted, afterKey);
    const cursors = this.#runs.map((run) => {
      const start = Math.max(0, lastAtOrBefore(run.chunkKeys, afterKey));
      const cursor = new RunCursor<V>(run, start, (id, chunk) => this.#chunkItems(id, chunk));
      while (cursor.peek() !== undefined && cursor.peek()!.key <= afterKey) cursor.next();
      return cursor;
    });
    while (out.length < limit) {
      let key: string | undefined = r < sorted.length ? sorted[r] : undefined;
      for (const c of cursors) {
        const head = c.peek();
        if (head && (key === undefined || head.key < key)) key = head.key;
      }
      if (key === undefined) break;
      let value: V | undefined;
      if (sorted[r] === key) {
        value = this.#recent.get(key);
        r++;
      }
      for (const c of cursors) {
        if (c.peek()?.key !== key) continue;
        value ??= c.peek()!.value;
        c.next();
      }
      if (value !== undefined && (!filter || filter(key, value))) out.push([key, value]);
    }
    return out;
  }

  stats(): PackedStoreStats {
    return {
      recent: this.#recent.size,
      deltas: this.#deltaRows,
      runs: this.#runs.map((r) => ({
        level: r.level,
        entries: r.entries,
        chunks: r.chunkKeys.length,
      })),
      chunksRead: this.#chunksRead,
    };
  }

  #chunkItems(runId: number, chunk: number): Item<V>[] {
    const row = this.#sql
      .exec<{ body: ArrayBuffer }>(
        `SELECT body FROM ${this.#run} WHERE run_id = ? AND chunk = ?`,
        runId,
        chunk,
      )
      .toArray()[0];
    this.#chunksRead++;
    if (!row) throw new Error(`packed store: chunk ${chunk} of run ${runId} is missing`);
    return decodeItems<V>(new Uint8Array(row.body));
  }

  #remember(key: string, value: V): void {
    if (this.#cache.size >= this.#options.cacheEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, value);
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Writes one delta row (more only past 1 MB) holding every entry given and `extra` (null: none).
   * Runs no transaction of its own: call it inside the caller's `transactionSync`, with whatever
   * must land atomically with these entries.
   */
  writeDelta(entries: Iterable<readonly [string, V]>, extra: unknown = null): void {
    const sorted = [...entries].sort((a, b) => compareKeys(a[0], b[0]));
    const parts: Uint8Array[][] = [];
    let part: Uint8Array[] = [];
    let bytes = 0;
    for (const [key, value] of sorted) {
      const raw = encode([key, value]);
      if (bytes > 0 && bytes + raw.length > MAX_ROW_BYTES) {
        parts.push(part);
        part = [];
        bytes = 0;
      }
      part.push(raw);
      bytes += raw.length;
    }
    parts.push(part);
    parts.forEach((items, i) => {
      // the extra rides in the last part, so a replay applies it after all of its entries
      const head = encode(i === parts.length - 1 ? extra : null);
      this.#sql.exec(`INSERT INTO ${this.#delta} (body) VALUES (?)`, concat([head, ...items]));
      this.#deltaRows++;
    });
    for (const [key, value] of sorted) {
      this.#recent.set(key, value);
      this.#cache.delete(key);
    }
    if (sorted.length > 0) this.#recentSorted = null;
  }

  /** Whether compactIfDue would compact now. */
  compactionDue(): boolean {
    return (
      this.#recent.size >= this.#options.compactAtEntries ||
      this.#deltaRows >= this.#options.compactAtDeltas
    );
  }

  /**
   * Compacts if due (see compactNow). `checkpoint` runs inside the transaction that deletes the
   * delta rows: the caller writes there whatever of its own it kept only in their extras.
   */
  compactIfDue(checkpoint?: () => void): boolean {
    if (!this.compactionDue()) return false;
    this.compactNow(checkpoint);
    return true;
  }

  /** Writes `recent` as a run of level 0, deletes the deltas, then merges full levels. */
  compactNow(checkpoint?: () => void): void {
    if (this.#deltaRows > 0) {
      const keys = [...this.#recent.keys()].sort(compareKeys);
      this.storage.transactionSync(() => {
        if (keys.length > 0) {
          const writer = this.#writer(keys.length);
          for (const key of keys) {
            const value = this.#recent.get(key) as V;
            writer.add(key, encode([key, value]));
          }
          this.#addRun(writer.finish(0));
        }
        checkpoint?.();
        this.#sql.exec(`DELETE FROM ${this.#delta}`);
      });
      this.#deltaRows = 0;
      this.#recent.clear();
      this.#recentSorted = null;
    }
    for (;;) {
      const full = this.#fullLevel();
      if (full === null) break;
      this.#merge(full);
    }
  }

  /**
   * Stores entries given in strictly increasing key order as one run (moving an older table in
   * once). Call before any writeDelta; runs its own transaction unless inside one.
   */
  importSorted(entries: Iterable<readonly [string, V]>, expectedEntries: number): void {
    const writer = this.#writer(expectedEntries);
    let last: string | null = null;
    for (const [key, value] of entries) {
      if (last !== null && compareKeys(last, key) >= 0)
        throw new Error("packed store: importSorted needs strictly increasing keys");
      last = key;
      writer.add(key, encode([key, value]));
    }
    if (writer.count === 0) return;
    // the level of runs of its size, so that small runs do not keep merging with it
    const level = levelFor(writer.count, this.#options);
    this.#addRun(writer.finish(level));
  }

  #fullLevel(): number | null {
    const perLevel = new Map<number, number>();
    for (const run of this.#runs) perLevel.set(run.level, (perLevel.get(run.level) ?? 0) + 1);
    let lowest: number | null = null;
    for (const [level, n] of perLevel)
      if (n >= this.#options.runsPerLevel && (lowest === null || level < lowest)) lowest = level;
    return lowest;
  }

  /** Merges every run of `level` into one run of the next level, in one transaction. */
  #merge(level: number): void {
    const inputs = this.#runs.filter((r) => r.level === level); // newest first
    const expected = inputs.reduce((n, r) => n + r.entries, 0);
    const cursors = inputs.map(
      (run) => new RunCursor<V>(run, 0, (id, chunk) => this.#chunkItems(id, chunk)),
    );
    this.storage.transactionSync(() => {
      const writer = this.#writer(expected);
      for (;;) {
        let key: string | undefined;
        for (const c of cursors) {
          const head = c.peek();
          if (head && (key === undefined || head.key < key)) key = head.key;
        }
        if (key === undefined) break;
        let raw: Uint8Array | undefined;
        for (const c of cursors) {
          if (c.peek()?.key !== key) continue;
          raw ??= c.peek()!.raw;
          c.next();
        }
        writer.add(key, raw!);
      }
      for (const run of inputs) {
        this.#sql.exec(`DELETE FROM ${this.#run} WHERE run_id = ?`, run.id);
        this.#sql.exec(`DELETE FROM ${this.#meta} WHERE run_id = ?`, run.id);
      }
      this.#runs = this.#runs.filter((r) => !inputs.includes(r));
      this.#addRun(writer.finish(level + 1));
    });
  }

  #writer(expectedEntries: number): RunWriter {
    const id = this.#nextRunId++;
    return new RunWriter(this.#sql, this.#run, id, expectedEntries, this.#options.chunkBytes);
  }

  #addRun(run: Run): void {
    const body = encode({
      level: run.level,
      entries: run.entries,
      chunkKeys: run.chunkKeys,
      bloom: run.bloom.bits,
      hashes: run.bloom.hashes,
    });
    for (let part = 0; part * MAX_ROW_BYTES < body.length; part++) {
      this.#sql.exec(
        `INSERT INTO ${this.#meta} (run_id, part, body) VALUES (?, ?, ?)`,
        run.id,
        part,
        body.subarray(part * MAX_ROW_BYTES, (part + 1) * MAX_ROW_BYTES),
      );
    }
    this.#runs.push(run);
    this.#sortRuns();
  }
}

/** Writes a run's chunks as entries arrive in key order; `finish` gives its in-memory meta. */
class RunWriter {
  readonly #chunkKeys: string[] = [];
  readonly #bloom: Bloom;
  #items: Uint8Array[] = [];
  #bytes = 0;
  #firstKey = "";
  count = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly table: string,
    private readonly id: number,
    expectedEntries: number,
    private readonly chunkBytes: number,
  ) {
    this.#bloom = newBloom(expectedEntries);
  }

  add(key: string, raw: Uint8Array): void {
    if (this.#items.length === 0) this.#firstKey = key;
    this.#items.push(raw);
    this.#bytes += raw.length;
    bloomAdd(this.#bloom, key);
    this.count++;
    if (this.#bytes >= this.chunkBytes) this.#flushChunk();
  }

  #flushChunk(): void {
    if (this.#items.length === 0) return;
    this.sql.exec(
      `INSERT INTO ${this.table} (run_id, chunk, first_key, body) VALUES (?, ?, ?, ?)`,
      this.id,
      this.#chunkKeys.length,
      this.#firstKey,
      concat(this.#items),
    );
    this.#chunkKeys.push(this.#firstKey);
    this.#items = [];
    this.#bytes = 0;
  }

  finish(level: number): Run {
    this.#flushChunk();
    return {
      id: this.id,
      level,
      entries: this.count,
      chunkKeys: this.#chunkKeys,
      bloom: this.#bloom,
    };
  }
}

/** Reads a run in key order from a chunk on, one chunk (one row read) at a time. */
class RunCursor<V> {
  #chunk: number;
  #items: Item<V>[] = [];
  #at = 0;

  constructor(
    private readonly run: Run,
    startChunk: number,
    private readonly load: (runId: number, chunk: number) => Item<V>[],
  ) {
    this.#chunk = startChunk;
    this.#fill();
  }

  peek(): Item<V> | undefined {
    return this.#items[this.#at];
  }

  next(): void {
    this.#at++;
    if (this.#at >= this.#items.length) {
      this.#chunk++;
      this.#fill();
    }
  }

  #fill(): void {
    this.#items =
      this.#chunk < this.run.chunkKeys.length ? this.load(this.run.id, this.#chunk) : [];
    this.#at = 0;
  }
}

function decodeItems<V>(bytes: Uint8Array): Item<V>[] {
  const items: Item<V>[] = [];
  let rest = bytes;
  while (rest.length > 0) {
    const [[key, value], next] = decodeFirst(rest) as [[string, V], Uint8Array];
    items.push({ key, value, raw: rest.subarray(0, rest.length - next.length) });
    rest = next;
  }
  return items;
}

/** The level whose runs are about as big as `entries` (level L: ~compactAtEntries × 4^L). */
function levelFor(entries: number, options: PackedStoreOptions): number {
  let level = 0;
  let size = options.compactAtEntries;
  while (size * options.runsPerLevel <= entries) {
    size *= options.runsPerLevel;
    level++;
  }
  return level;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Index of the last element <= key, or -1. */
function lastAtOrBefore(sorted: string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Index of the first element > key. */
function upperBound(sorted: string[], key: string): number {
  return lastAtOrBefore(sorted, key) + 1;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
