import { decodeFirst, encode } from "cborg";
import { concatBytes } from "../protocol/bytes";
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
//     key wins) into one run of the next level. A run is visible once its meta row (level,
//     entries) is written.
//   - `<name>_run_seg`: a run's index, one row per segment of ≤ SEGMENT_CHUNKS chunks (and per
//     merge step): the first key of each chunk and a Bloom filter of the segment's keys, kept
//     in memory, so a lookup reads at most one chunk per run, and usually none. Written with
//     the chunks, so a merge's output needs nothing rebuilt after a restart.
//   - `<name>_merge`: at most one row, the merge in progress, so that it goes on after a restart.
//
// A Durable Object runs one request at a time, and a merge of the top level of a big store
// rewrites all of it (~1 GB at 10 M accounts): done at once it would stall ingestion for seconds
// and could outlive the platform's CPU limit, so it would never finish. So merges are steps
// (`mergeStep`, called by the owner at each report), each writing or deleting at most
// maxChunksPerStep chunks in one transaction:
//   1. Writing: the output run's chunks, in key order. The output has no meta yet, so lookups
//      do not see it; they keep reading the inputs, which hold the same newest values. Whatever
//      is written meanwhile is newer than the inputs: a delta (recent is read first) or a run
//      of level 0 (a higher id, read before the inputs' level).
//   2. The last chunk written, ONE transaction writes the output's meta and deletes the inputs'
//      metas: lookups switch from the inputs to the output at once.
//   3. Deleting the inputs' chunks (now retired: no lookup reads them), over as many steps.
// Progress needs no extra row per step: the merge row names the level, inputs and output id
// (written once) and then the retired runs; the output's segment rows, one per step, say how
// far it got (its last key: the inputs are sought again after it). One merge at a time; a step
// does more (one more maxChunksPerStep per run waiting beyond a full level) when runs pile up
// behind it.
//
// Rows written per entry ≈ 2 × levels / entries per chunk (each level writes a chunk once and
// deletes it once); a delta row per writeDelta; a segment row per step or 32 chunks; the merge
// row ≤ 3 times per merge that takes more than one step. Lookups: recent → cache → runs, newest
// first.
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
  /**
   * Run chunks (and segment rows) a merge step writes or deletes at most, while no runs pile up
   * behind the merge: the bound on the time a step holds the object.
   */
  maxChunksPerStep: number;
};

export const DEFAULT_PACKED_STORE_OPTIONS: PackedStoreOptions = {
  compactAtEntries: 20_000,
  compactAtDeltas: 120,
  chunkBytes: 64 * 1024,
  runsPerLevel: 4,
  cacheEntries: 50_000,
  maxChunksPerStep: 32,
};

/** A Durable Object SQLite value (a row) is limited to 2 MB: bigger bodies are split. */
const MAX_ROW_BYTES = 1_000_000;
/** Chunks per segment row at most (its Bloom filter ≤ ~100 KB with 64 KB chunks). */
const SEGMENT_CHUNKS = 32;
const SEGMENT_KEYS = 400_000;

type Segment = { from: number; bloom: Bloom };

type Run = {
  id: number;
  level: number;
  entries: number;
  /** First key of each chunk. */
  chunkKeys: string[];
  /** By first chunk; each filter holds the keys of its chunks. */
  segments: Segment[];
};

/** A segment row's body. */
type SegmentRow = {
  from: number;
  chunkKeys: string[];
  bloom: Uint8Array;
  hashes: number;
  entries: number;
  lastKey: string;
};

type Item<V> = { key: string; value: V; raw: Uint8Array };

export type PackedStoreStats = {
  recent: number;
  deltas: number;
  runs: { level: number; entries: number; chunks: number }[];
  /** Run chunks read since construction (a lookup the Bloom filters rule out reads none). */
  chunksRead: number;
  /** The merge in progress: its inputs' level and the output chunks written so far. */
  merging: { level: number; inputs: number; chunksWritten: number } | null;
  /** Chunks of merged runs (invisible to lookups) not deleted yet. */
  retiredChunks: number;
};

/** A merge in progress; its inputs stay in `#runs` (and visible) until it ends. */
type Merge<V> = {
  level: number;
  /** Newest first. */
  inputs: Run[];
  writer: RunWriter;
  /** The last key written to the output. */
  lastKey: string | null;
  /** One per input, positioned after lastKey; null until positioned. */
  cursors: RunCursor<V>[] | null;
};

/** A merged input run: its meta is gone, its chunks then segments are deleted over steps. */
type Retired = { id: number; chunks: number; segments: number; from: number };

type MergeRow = {
  merging?: [level: number, inputs: number[], output: number];
  retired?: [id: number, chunks: number, segments: number][];
};

export class PackedStore<V> {
  readonly #sql: SqlStorage;
  readonly #options: PackedStoreOptions;
  readonly #delta: string;
  readonly #run: string;
  readonly #meta: string;
  readonly #seg: string;
  readonly #mergeTable: string;
  /** Every entry of the delta rows not yet compacted (newest value). */
  readonly #recent = new Map<string, V>();
  #recentSorted: string[] | null = null;
  #deltaRows = 0;
  /** Newest first: lower level first, then higher id. */
  #runs: Run[] = [];
  #nextRunId = 1;
  readonly #cache = new Map<string, V>();
  #chunksRead = 0;
  #merge: Merge<V> | null = null;
  #retired: Retired[] = [];
  /** What the merge row holds (JSON), null: no row. */
  #savedMergeRow: string | null = null;
  /** At construction: the segments of a merge's output, until #loadMerge takes them. */
  #segmentsWithoutMeta = new Map<number, SegmentRow[]>();
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
    this.#seg = `${name}_run_seg`;
    this.#mergeTable = `${name}_merge`;
    // WITHOUT ROWID on the composite keys: an insert is billed one row (docs/cost.md)
    this.#sql.exec(`
CREATE TABLE IF NOT EXISTS ${this.#delta} (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ${this.#run} (run_id INTEGER NOT NULL, chunk INTEGER NOT NULL,
  first_key TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (run_id, chunk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ${this.#meta} (run_id INTEGER NOT NULL, part INTEGER NOT NULL,
  body BLOB NOT NULL, PRIMARY KEY (run_id, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ${this.#seg} (run_id INTEGER NOT NULL, seg INTEGER NOT NULL,
  body BLOB NOT NULL, PRIMARY KEY (run_id, seg)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ${this.#mergeTable} (id INTEGER PRIMARY KEY, body BLOB NOT NULL);`);
    this.#loadRuns();
    this.#loadMerge();
    this.#replayDeltas();
  }

  #loadRuns(): void {
    const segments = this.#loadSegments();
    const parts = new Map<number, Uint8Array[]>();
    for (const row of this.#sql.exec<{ run_id: number; body: ArrayBuffer }>(
      `SELECT run_id, body FROM ${this.#meta} ORDER BY run_id, part`,
    )) {
      const list = parts.get(row.run_id) ?? [];
      list.push(new Uint8Array(row.body));
      parts.set(row.run_id, list);
    }
    for (const [id, list] of parts) {
      const meta = decodeFirst(concatBytes(list))[0] as {
        level: number;
        entries: number;
        // the first layout: the whole index in the meta
        chunkKeys?: string[];
        bloom?: Uint8Array;
        hashes?: number;
      };
      const index = meta.bloom
        ? {
            chunkKeys: meta.chunkKeys ?? [],
            segments: [{ from: 0, bloom: { bits: meta.bloom, hashes: meta.hashes ?? 7 } }],
          }
        : indexOf(segments.get(id) ?? []);
      this.#runs.push({ id, level: meta.level, entries: meta.entries, ...index });
      this.#nextRunId = Math.max(this.#nextRunId, id + 1);
    }
    // segments of a run whose meta is not written yet are a merge's output (see #loadMerge)
    this.#segmentsWithoutMeta = new Map([...segments].filter(([id]) => !parts.has(id)));
    this.#sortRuns();
  }

  #loadSegments(): Map<number, SegmentRow[]> {
    const segments = new Map<number, SegmentRow[]>();
    for (const row of this.#sql.exec<{ run_id: number; body: ArrayBuffer }>(
      `SELECT run_id, body FROM ${this.#seg} ORDER BY run_id, seg`,
    )) {
      const list = segments.get(row.run_id) ?? [];
      list.push(decodeFirst(new Uint8Array(row.body))[0] as SegmentRow);
      segments.set(row.run_id, list);
    }
    return segments;
  }

  #loadMerge(): void {
    const row = this.#sql
      .exec<{ body: ArrayBuffer }>(`SELECT body FROM ${this.#mergeTable} WHERE id = 0`)
      .toArray()[0];
    if (!row) return;
    const saved = decodeFirst(new Uint8Array(row.body))[0] as MergeRow;
    this.#savedMergeRow = JSON.stringify(saved);
    if (saved.merging) {
      const [level, ids, output] = saved.merging;
      const inputs = ids.map((id) => {
        const run = this.#runs.find((r) => r.id === id);
        if (!run) throw new Error(`packed store: input run ${id} of the merge is missing`);
        return run;
      });
      const writer = this.#writerWithId(output);
      const written = this.#segmentsWithoutMeta.get(output) ?? [];
      for (const segment of written) writer.adopt(segment);
      this.#merge = {
        level,
        inputs,
        writer,
        lastKey: written.at(-1)?.lastKey ?? null,
        cursors: null,
      };
      this.#nextRunId = Math.max(this.#nextRunId, output + 1);
    }
    this.#segmentsWithoutMeta.clear();
    for (const [id, chunks, segments] of saved.retired ?? []) {
      // the chunks below the first one left were deleted before the restart
      const first = (table: string, column: string) =>
        this.#sql
          .exec<{ c: number | null }>(
            `SELECT MIN(${column}) AS c FROM ${table} WHERE run_id = ?`,
            id,
          )
          .one().c;
      const from = first(this.#run, "chunk") ?? chunks + (first(this.#seg, "seg") ?? segments);
      this.#retired.push({ id, chunks, segments, from });
      this.#nextRunId = Math.max(this.#nextRunId, id + 1);
    }
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
      const chunk = lastAtOrBefore(run.chunkKeys, key);
      if (chunk < 0 || !bloomMayHave(segmentOf(run.segments, chunk).bloom, key)) continue;
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
      merging: this.#merge && {
        level: this.#merge.level,
        inputs: this.#merge.inputs.length,
        chunksWritten: this.#merge.writer.chunks,
      },
      retiredChunks: this.#retired.reduce((n, r) => n + r.chunks - r.from, 0),
    };
  }

  #chunkItems(runId: number, chunk: number): Item<V>[] {
    const items = this.#tryChunkItems(runId, chunk);
    if (!items) throw new Error(`packed store: chunk ${chunk} of run ${runId} is missing`);
    return items;
  }

  #tryChunkItems(runId: number, chunk: number): Item<V>[] | null {
    const row = this.#sql
      .exec<{ body: ArrayBuffer }>(
        `SELECT body FROM ${this.#run} WHERE run_id = ? AND chunk = ?`,
        runId,
        chunk,
      )
      .toArray()[0];
    if (!row) return null;
    this.#chunksRead++;
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
      this.#sql.exec(`INSERT INTO ${this.#delta} (body) VALUES (?)`, concatBytes([head, ...items]));
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
   * Compacts if due (see compactNow), then takes one merge step (see mergeStep): call it at each
   * report. `checkpoint` runs inside the transaction that deletes the delta rows: the caller
   * writes there whatever of its own it kept only in their extras. Returns whether it compacted.
   */
  compactIfDue(checkpoint?: () => void): boolean {
    const due = this.compactionDue();
    if (due) this.#compactRecent(checkpoint);
    this.mergeStep();
    return due;
  }

  /** Writes `recent` as a run of level 0 and deletes the deltas, then takes one merge step. */
  compactNow(checkpoint?: () => void): void {
    this.#compactRecent(checkpoint);
    this.mergeStep();
  }

  /**
   * ≤ 20,000 entries (compactAtEntries) in one transaction: small enough to stay one step.
   * Runs while a merge is in progress too: the new run is newer than all of the merge's inputs.
   */
  #compactRecent(checkpoint?: () => void): void {
    if (this.#deltaRows > 0) {
      const keys = [...this.#recent.keys()].sort(compareKeys);
      this.storage.transactionSync(() => {
        if (keys.length > 0) {
          const writer = this.#writer();
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
  }

  /**
   * Stores entries given in strictly increasing key order as one run (moving an older table in
   * once). Call before any writeDelta; runs its own transaction unless inside one.
   */
  importSorted(entries: Iterable<readonly [string, V]>, _expectedEntries?: number): void {
    const writer = this.#writer();
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

  /**
   * Does at most the step's budget of merge work (chunk rows written, chunk and segment rows
   * deleted; see the top of the file) in one transaction: goes on with the merge in progress,
   * or starts one when a level is full and the previous merge's inputs are all deleted. Returns
   * whether merge work is left for later steps.
   */
  mergeStep(): boolean {
    if (!this.#merge && this.#retired.length === 0) {
      const level = this.#fullLevel();
      if (level === null) return false;
      this.#startMerge(level);
    }
    this.storage.transactionSync(() => {
      let budget = this.#stepBudget();
      while (budget > 0) {
        if (this.#retired.length > 0) budget = this.#deleteRetired(budget);
        else if (this.#merge) budget = this.#advanceMerge(this.#merge, budget);
        else {
          const level = this.#fullLevel();
          if (level === null) break;
          this.#startMerge(level);
        }
      }
      this.#saveMergeRow();
    });
    return this.#merge !== null || this.#retired.length > 0 || this.#fullLevel() !== null;
  }

  #fullLevel(): number | null {
    const perLevel = this.#runsPerLevelOutsideMerge();
    let lowest: number | null = null;
    for (const [level, n] of perLevel)
      if (n >= this.#options.runsPerLevel && (lowest === null || level < lowest)) lowest = level;
    return lowest;
  }

  #runsPerLevelOutsideMerge(): Map<number, number> {
    const perLevel = new Map<number, number>();
    for (const run of this.#runs)
      if (!this.#merge?.inputs.includes(run))
        perLevel.set(run.level, (perLevel.get(run.level) ?? 0) + 1);
    return perLevel;
  }

  /**
   * maxChunksPerStep, plus as much again per run waiting beyond a full level (runs made while a
   * merge is in progress wait for it): a merge that falls behind catches up in fewer, bigger
   * steps, so runs (which every lookup may read and every scan reads) stay bounded.
   */
  #stepBudget(): number {
    let beyond = 0;
    for (const n of this.#runsPerLevelOutsideMerge().values())
      beyond += Math.max(0, n - this.#options.runsPerLevel);
    return Math.max(1, this.#options.maxChunksPerStep) * (1 + beyond);
  }

  #startMerge(level: number): void {
    const inputs = this.#runs.filter((r) => r.level === level); // newest first
    this.#merge = {
      level,
      inputs,
      writer: this.#writer(),
      lastKey: null,
      cursors: null,
    };
  }

  /** Writes output chunks until the budget is spent or the inputs end. Returns what is left. */
  #advanceMerge(merge: Merge<V>, budget: number): number {
    const writer = merge.writer;
    merge.cursors ??= merge.inputs.map((run) => this.#cursorAfter(run, merge.lastKey));
    const cursors = merge.cursors;
    while (budget > 0) {
      let key: string | undefined;
      for (const c of cursors) {
        const head = c.peek();
        if (head && (key === undefined || head.key < key)) key = head.key;
      }
      if (key === undefined) {
        if (writer.pending) {
          writer.flush();
          budget--;
        }
        this.#endMerge(merge);
        return budget;
      }
      let raw: Uint8Array | undefined;
      for (const c of cursors) {
        if (c.peek()?.key !== key) continue;
        raw ??= c.peek()!.raw;
        c.next();
      }
      merge.lastKey = key;
      if (writer.add(key, raw!)) budget--;
    }
    // a step ends on a chunk boundary, its segment written: nothing of the output is only in
    // memory between steps
    writer.flushSegment();
    return 0;
  }

  /** A cursor over `run` at its first key after `after` (null: its start). */
  #cursorAfter(run: Run, after: string | null): RunCursor<V> {
    const load = (id: number, chunk: number) => this.#chunkItems(id, chunk);
    if (after === null) return new RunCursor<V>(run, 0, load);
    const cursor = new RunCursor<V>(run, Math.max(0, lastAtOrBefore(run.chunkKeys, after)), load);
    while (cursor.peek() !== undefined && cursor.peek()!.key <= after) cursor.next();
    return cursor;
  }

  /** Lookups switch from the inputs to the output here, in the step's one transaction. */
  #endMerge(merge: Merge<V>): void {
    this.#addRun(merge.writer.finish(merge.level + 1));
    for (const run of merge.inputs)
      this.#sql.exec(`DELETE FROM ${this.#meta} WHERE run_id = ?`, run.id);
    this.#runs = this.#runs.filter((r) => !merge.inputs.includes(r));
    this.#retired = merge.inputs.map((r) => ({
      id: r.id,
      chunks: r.chunkKeys.length,
      segments: r.segments.length,
      from: 0,
    }));
    this.#merge = null;
  }

  /**
   * Deletes retired chunks, then segment rows, at most `budget` rows (`from` counts both).
   * Returns what is left of the budget.
   */
  #deleteRetired(budget: number): number {
    for (const retired of this.#retired) {
      const total = retired.chunks + retired.segments;
      while (budget > 0 && retired.from < total) {
        const inChunks = retired.from < retired.chunks;
        const to = Math.min(inChunks ? retired.chunks : total, retired.from + budget);
        if (inChunks)
          this.#sql.exec(`DELETE FROM ${this.#run} WHERE run_id = ? AND chunk < ?`, retired.id, to);
        else
          this.#sql.exec(
            `DELETE FROM ${this.#seg} WHERE run_id = ? AND seg < ?`,
            retired.id,
            to - retired.chunks,
          );
        budget -= to - retired.from;
        retired.from = to;
      }
    }
    if (this.#retired.every((r) => r.from >= r.chunks + r.segments)) this.#retired = [];
    return budget;
  }

  /** Writes the merge row when what it must hold changed (at most ~3 times per merge). */
  #saveMergeRow(): void {
    const row: MergeRow | null = this.#merge
      ? {
          merging: [this.#merge.level, this.#merge.inputs.map((r) => r.id), this.#merge.writer.id],
        }
      : this.#retired.length > 0
        ? { retired: this.#retired.map((r) => [r.id, r.chunks, r.segments]) }
        : null;
    const json = row && JSON.stringify(row);
    if (json === this.#savedMergeRow) return;
    if (row)
      this.#sql.exec(
        `INSERT INTO ${this.#mergeTable} (id, body) VALUES (0, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body`,
        encode(row),
      );
    else this.#sql.exec(`DELETE FROM ${this.#mergeTable} WHERE id = 0`);
    this.#savedMergeRow = json;
  }

  #writer(): RunWriter {
    return this.#writerWithId(this.#nextRunId++);
  }

  #writerWithId(id: number): RunWriter {
    return new RunWriter(this.#sql, this.#run, this.#seg, id, this.#options.chunkBytes);
  }

  /** Makes a run visible: its meta row (its chunks and segments are written). */
  #addRun(run: Run): void {
    this.#sql.exec(
      `INSERT INTO ${this.#meta} (run_id, part, body) VALUES (?, 0, ?)`,
      run.id,
      encode({ level: run.level, entries: run.entries }),
    );
    this.#runs.push(run);
    this.#sortRuns();
  }
}

/**
 * Writes a run's chunks as entries arrive in key order, and a segment row (first keys, Bloom
 * filter) per SEGMENT_CHUNKS chunks or when asked; `finish` gives its in-memory index.
 */
class RunWriter {
  readonly #chunkKeys: string[] = [];
  readonly #segments: Segment[] = [];
  #items: Uint8Array[] = [];
  #bytes = 0;
  #firstKey = "";
  /** Keys of the chunks written since the last segment. */
  #segmentKeys: string[] = [];
  #segmentFrom = 0;
  count = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly table: string,
    private readonly segTable: string,
    readonly id: number,
    private readonly chunkBytes: number,
  ) {}

  /** Chunks written so far. */
  get chunks(): number {
    return this.#chunkKeys.length;
  }

  /** Whether entries wait for a chunk of their own. */
  get pending(): boolean {
    return this.#items.length > 0;
  }

  /** Adds an entry; returns whether that wrote a chunk. */
  add(key: string, raw: Uint8Array): boolean {
    if (this.#items.length === 0) this.#firstKey = key;
    this.#items.push(raw);
    this.#bytes += raw.length;
    this.#segmentKeys.push(key);
    this.count++;
    if (this.#bytes < this.chunkBytes) return false;
    this.flush();
    return true;
  }

  /** Takes back a segment already stored (a merge going on after a restart). */
  adopt(row: SegmentRow): void {
    this.#segments.push({ from: row.from, bloom: { bits: row.bloom, hashes: row.hashes } });
    this.#chunkKeys.push(...row.chunkKeys);
    this.#segmentFrom = this.#chunkKeys.length;
    this.count += row.entries;
  }

  /** Writes the entries added as a chunk. */
  flush(): void {
    if (this.#items.length === 0) return;
    this.sql.exec(
      `INSERT INTO ${this.table} (run_id, chunk, first_key, body) VALUES (?, ?, ?, ?)`,
      this.id,
      this.#chunkKeys.length,
      this.#firstKey,
      concatBytes(this.#items),
    );
    this.#chunkKeys.push(this.#firstKey);
    this.#items = [];
    this.#bytes = 0;
    if (
      this.#chunkKeys.length - this.#segmentFrom >= SEGMENT_CHUNKS ||
      this.#segmentKeys.length >= SEGMENT_KEYS
    )
      this.flushSegment();
  }

  /** Writes the segment row of the chunks written since the last one (call after flush). */
  flushSegment(): void {
    if (this.#chunkKeys.length === this.#segmentFrom) return;
    const keys = this.#segmentKeys;
    const bloom = newBloom(keys.length);
    for (const key of keys) bloomAdd(bloom, key);
    const row: SegmentRow = {
      from: this.#segmentFrom,
      chunkKeys: this.#chunkKeys.slice(this.#segmentFrom),
      bloom: bloom.bits,
      hashes: bloom.hashes,
      entries: keys.length,
      lastKey: keys.at(-1) ?? "",
    };
    this.sql.exec(
      `INSERT INTO ${this.segTable} (run_id, seg, body) VALUES (?, ?, ?)`,
      this.id,
      this.#segments.length,
      encode(row),
    );
    this.#segments.push({ from: this.#segmentFrom, bloom });
    this.#segmentFrom = this.#chunkKeys.length;
    this.#segmentKeys = [];
  }

  finish(level: number): Run {
    this.flush();
    this.flushSegment();
    return {
      id: this.id,
      level,
      entries: this.count,
      chunkKeys: this.#chunkKeys,
      segments: this.#segments,
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

/** A run's in-memory index from its segment rows. */
function indexOf(rows: SegmentRow[]): Pick<Run, "chunkKeys" | "segments"> {
  const chunkKeys: string[] = [];
  const segments: Segment[] = [];
  for (const row of rows) {
    segments.push({ from: chunkKeys.length, bloom: { bits: row.bloom, hashes: row.hashes } });
    chunkKeys.push(...row.chunkKeys);
  }
  return { chunkKeys, segments };
}

/** The segment holding `chunk`. */
function segmentOf(segments: Segment[], chunk: number): Segment {
  let lo = 0;
  let hi = segments.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (segments[mid]!.from <= chunk) lo = mid;
    else hi = mid;
  }
  return segments[lo]!;
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
