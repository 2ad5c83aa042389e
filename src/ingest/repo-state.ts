import { PackedStore, type PackedStoreOptions } from "../storage/packed-store";
import { type HostRecord, hostSnapshot } from "./host-record";
import { REPO_STATE_MEMORY_ENTRIES, REPO_STATE_RUN_CACHE_ENTRIES } from "./memory-bounds";

// The state an ingester keeps per account of its hosts: the last rev, commit and MST root seen
// (for rev ordering and sync 1.1 continuity) and the upstream status.
//
// Three layers, so that what is on disk always matches the ingester's persisted cursor:
//   - working: the effect of every event validated so far, including events the Sequencer has
//     not acknowledged yet (validation reads this);
//   - durable-dirty: effects of acknowledged events, not yet written;
//   - SQLite, packed (storage/packed-store.ts): once per report, ONE delta row holds every
//     acknowledged change together with the changed host records (their cursors) and account
//     counts, so the cursor and the state it matches are one row, and a report costs one row
//     whatever the number of accounts or hosts it names (rows written are billed: DESIGN.md).
//     Deltas are compacted into sorted runs now and then; host rows and counts are written
//     then. After a crash, the ingester resumes each host from its persisted cursor and replays
//     the rest through validation (the Sequencer drops what it already has), so the state
//     rebuilt is exactly the state of the sequenced log: no stale rev, no false flag.

export type RepoState = {
  did: string;
  host: string;
  /** Last rev seen ("" when only an #account event was seen). */
  rev: string;
  head: string | null;
  data: string | null;
  active: boolean;
  status: string | null;
  /** Unused: relay takedowns are held by the Sequencer (relay-wide); kept for old rows. */
  relayTakedown: boolean;
  /** Last sync 1.1 continuity problem recorded for this repo, if any. */
  flag: string | null;
};

/** What is known of an account before any of its commits has been seen. */
export function unseenRepo(did: string, host: string): RepoState {
  return {
    did,
    host,
    rev: "",
    head: null,
    data: null,
    active: true,
    status: null,
    relayTakedown: false,
    flag: null,
  };
}

// Accounts per host (the account limit) are snapshotted here at compaction; changes since ride
// in the delta rows.
const COUNTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS repo_state_counts (host TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_state_snapshot (part INTEGER PRIMARY KEY, body TEXT NOT NULL);`;

/** A snapshot part stays well under a SQLite value's 2 MB limit. */
const SNAPSHOT_PART_CHARS = 1_000_000;

/** Every host record and account count of the object, as of the last compaction. */
type Snapshot = { hosts: string[]; counts: [string, number][] };

/** The row-per-account layout of earlier releases: moved into the packed store once. */
const REPO_STATE_TABLE = `
CREATE TABLE IF NOT EXISTS repo_state (
  did TEXT PRIMARY KEY, host TEXT NOT NULL, rev TEXT NOT NULL, head TEXT, data TEXT,
  active INTEGER NOT NULL, status TEXT, flag TEXT
) WITHOUT ROWID;`;

/** The layout before repo_state. */
const LEGACY_MIGRATION = `
INSERT OR IGNORE INTO repo_state (did, host, rev, head, data, active, status, flag)
  SELECT did, host, rev, head, data, active, status, flag FROM repos;
INSERT OR REPLACE INTO repo_state_counts (host, n) SELECT host, COUNT(*) FROM repo_state GROUP BY host;
DROP TABLE repos;`;

type Row = {
  did: string;
  host: string;
  rev: string;
  head: string | null;
  data: string | null;
  active: number;
  status: string | null;
  flag: string | null;
};

/** An account's state as stored (a tuple: ~40 bytes less per entry than named fields). */
type Stored = [
  host: string,
  rev: string,
  head: string | null,
  data: string | null,
  active: boolean,
  status: string | null,
  flag: string | null,
];

/** What a delta row carries besides the account states. */
type DeltaExtra = {
  /** Host records (JSON, stamped) whose cursor or counters changed. */
  hosts: string[];
  /** New account counts of the hosts whose count changed. */
  counts: [string, number][];
};

const STORE_NAME = "account_state";

function toStored(s: RepoState): Stored {
  return [s.host, s.rev, s.head, s.data, s.active, s.status, s.flag];
}

function fromStored(did: string, [host, rev, head, data, active, status, flag]: Stored): RepoState {
  return { did, host, rev, head, data, active, status, relayTakedown: false, flag };
}

function hasTable(sql: SqlStorage, name: string): boolean {
  return (
    sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray()
      .length > 0
  );
}

export class RepoStateStore {
  readonly #store: PackedStore<Stored>;
  /** Account states handed out, by identity (an unchanged account is the same object). */
  readonly #cache = new Map<string, RepoState>();
  /** Working state of events not yet acknowledged by the Sequencer (never evicted). */
  readonly #unacked = new Map<string, RepoState>();
  /** Acknowledged state not yet written. */
  readonly #dirty = new Map<string, RepoState>();
  /** Stored accounts per host. */
  readonly #counts = new Map<string, number>();
  /** Per host, accounts met but not stored yet (they count against the host's account limit). */
  readonly #fresh = new Map<string, Set<string>>();
  /** Host records found in the delta rows at start-up, oldest first (host-record.ts). */
  readonly replayedHosts: string[] = [];

  constructor(
    private readonly storage: DurableObjectStorage,
    options: Partial<PackedStoreOptions> = {},
  ) {
    const sql = storage.sql;
    sql.exec(COUNTS_SCHEMA);
    this.#store = new PackedStore<Stored>(storage, STORE_NAME, {
      cacheEntries: REPO_STATE_RUN_CACHE_ENTRIES,
      ...options,
    });
    this.#migrateRows();
    for (const row of sql.exec<{ host: string; n: number }>(
      "SELECT host, n FROM repo_state_counts",
    ))
      this.#counts.set(row.host, row.n);
    const snapshot = readSnapshot(sql);
    if (snapshot) {
      for (const [host, n] of snapshot.counts) this.#counts.set(host, n);
      this.replayedHosts.push(...snapshot.hosts);
    }
    for (const extra of this.#store.replayedExtras as DeltaExtra[]) {
      for (const [host, n] of extra.counts) this.#counts.set(host, n);
      this.replayedHosts.push(...extra.hosts);
    }
  }

  #migrateRows(): void {
    const sql = this.storage.sql;
    if (hasTable(sql, "repos"))
      this.storage.transactionSync(() => sql.exec(REPO_STATE_TABLE + LEGACY_MIGRATION));
    if (!hasTable(sql, "repo_state")) return;
    this.storage.transactionSync(() => {
      const count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM repo_state").one().n;
      const rows = sql.exec<Row>("SELECT * FROM repo_state ORDER BY did");
      this.#store.importSorted(
        (function* () {
          for (const r of rows)
            yield [
              r.did,
              [r.host, r.rev, r.head, r.data, r.active === 1, r.status, r.flag] as Stored,
            ] as const;
        })(),
        count,
      );
      sql.exec("DROP TABLE repo_state");
    });
  }

  get(did: string): RepoState | undefined {
    const working = this.#unacked.get(did) ?? this.#dirty.get(did);
    if (working) return working;
    const cached = this.#cache.get(did);
    if (cached) return cached;
    const stored = this.#store.get(did);
    if (!stored) return undefined;
    const state = fromStored(did, stored);
    this.#remember(state);
    return state;
  }

  /** The effect of an event accepted but not yet acknowledged: validation sees it at once. */
  setWorking(state: RepoState): void {
    const known =
      this.#unacked.has(state.did) || this.#dirty.has(state.did) || this.#cache.has(state.did);
    // get() caches every stored account it reads, and validation reads before it sets
    if (!known) this.#freshFor(state.host).add(state.did);
    this.#unacked.set(state.did, state);
  }

  #freshFor(host: string): Set<string> {
    let set = this.#fresh.get(host);
    if (!set) {
      set = new Set();
      this.#fresh.set(host, set);
    }
    return set;
  }

  /** The Sequencer acknowledged the event that produced `state`: it may now be written. */
  markAcknowledged(state: RepoState): void {
    this.#dirty.set(state.did, state);
    this.#remember(state);
    if (this.#unacked.get(state.did) === state) this.#unacked.delete(state.did);
  }

  /** Accounts of a host, counting those not stored yet (for the per-host account limit). */
  countForHost(host: string): number {
    return (this.#counts.get(host) ?? 0) + (this.#fresh.get(host)?.size ?? 0);
  }

  /**
   * Writes every acknowledged change and the given host records (the cursors that match those
   * changes) as one delta row; returns the account states written. Call inside the caller's
   * transaction. Writes nothing when nothing changed.
   */
  writeAcknowledged(hosts: HostRecord[]): RepoState[] {
    if (this.#dirty.size === 0 && hosts.length === 0) return [];
    const changed = [...this.#dirty.values()];
    this.#dirty.clear();
    const moved = new Set<string>();
    for (const s of changed) {
      const before = this.#store.get(s.did)?.[0];
      if (before !== s.host) {
        if (before !== undefined) {
          this.#counts.set(before, (this.#counts.get(before) ?? 1) - 1);
          moved.add(before);
        }
        this.#counts.set(s.host, (this.#counts.get(s.host) ?? 0) + 1);
        moved.add(s.host);
      }
      if (!this.#fresh.get(s.host)?.delete(s.did)) {
        // met under another host (it moved before it was written)
        for (const set of this.#fresh.values()) set.delete(s.did);
      }
    }
    const extra: DeltaExtra = {
      hosts: hosts.map(hostSnapshot),
      counts: [...moved].map((host) => [host, this.#counts.get(host) ?? 0]),
    };
    this.#store.writeDelta(
      changed.map((s) => [s.did, toStored(s)] as const),
      extra,
    );
    return changed;
  }

  /**
   * Folds the delta rows into sorted runs when enough have piled up (at report time). The host
   * records and counts that lived only in those rows are written in the same transaction as one
   * snapshot of every host of the object (`hosts`: its current records): one row, not one per
   * host, so a compaction costs the same rows whether 1 or 1,000 hosts moved.
   */
  compactIfDue(hosts: () => Iterable<HostRecord>): boolean {
    return this.#store.compactIfDue(() =>
      writeSnapshot(this.storage.sql, {
        hosts: [...hosts()].map(hostSnapshot),
        counts: [...this.#counts],
      }),
    );
  }

  #remember(state: RepoState): void {
    if (this.#cache.size >= REPO_STATE_MEMORY_ENTRIES && !this.#cache.has(state.did)) {
      const oldest = this.#cache.keys().next().value;
      // unacknowledged and unwritten states live in their own maps: the cache may forget any
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(state.did, state);
  }
}

function readSnapshot(sql: SqlStorage): Snapshot | null {
  const parts = sql
    .exec<{ body: string }>("SELECT body FROM account_state_snapshot ORDER BY part")
    .toArray();
  return parts.length === 0 ? null : (JSON.parse(parts.map((p) => p.body).join("")) as Snapshot);
}

function writeSnapshot(sql: SqlStorage, snapshot: Snapshot): void {
  const json = JSON.stringify(snapshot);
  let part = 0;
  for (let at = 0; at < json.length || part === 0; at += SNAPSHOT_PART_CHARS, part++)
    sql.exec(
      "INSERT INTO account_state_snapshot (part, body) VALUES (?, ?) ON CONFLICT(part) DO UPDATE SET body = excluded.body",
      part,
      json.slice(at, at + SNAPSHOT_PART_CHARS),
    );
  // a shorter snapshot than the last one: its extra parts would be read as part of this one
  sql.exec("DELETE FROM account_state_snapshot WHERE part >= ?", part);
}
