// The state an ingester keeps per account of its hosts: the last rev, commit and MST root seen
// (for rev ordering and sync 1.1 continuity) and the upstream status.
//
// Three layers, so that what is on disk always matches the ingester's persisted cursor:
//   - working: the effect of every event validated so far, including events the Sequencer has
//     not acknowledged yet (validation reads this);
//   - durable-dirty: effects of acknowledged events, not yet written;
//   - SQLite: written in one transaction per report together with the hosts' cursors, so a
//     busy account costs one row write per report, not one per event (rows written are billed:
//     DESIGN.md). After a crash, the ingester resumes each host from its persisted cursor and
//     replays the rest through validation (the Sequencer drops what it already has), so the
//     state rebuilt is exactly the state of the sequenced log: no stale rev, no false flag.

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

// One row per account, WITHOUT ROWID and with no secondary index, written by upsert: each write
// is billed as one row (an `INSERT OR REPLACE` into a rowid table with an index on host was
// billed as three: docs/cost.md). Accounts per host, which the index served, are kept in
// `repo_state_counts`, one row per host, written only when the count changes.
export const REPO_SCHEMA = `
CREATE TABLE IF NOT EXISTS repo_state (
  did TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  rev TEXT NOT NULL,
  head TEXT,
  data TEXT,
  active INTEGER NOT NULL,
  status TEXT,
  flag TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_state_counts (host TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;`;

/** The layout before repo_state: moved over once, then dropped. */
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

const MEMORY_ENTRIES = 100_000;

export class RepoStateStore {
  readonly #cache = new Map<string, RepoState>();
  /** Working state of events not yet acknowledged by the Sequencer (never evicted). */
  readonly #unacked = new Map<string, RepoState>();
  /** Acknowledged state not yet written. */
  readonly #dirty = new Map<string, RepoState>();
  /** Stored accounts per host (repo_state_counts). */
  readonly #counts = new Map<string, number>();
  /** Per host, accounts met but not stored yet (they count against the host's account limit). */
  readonly #fresh = new Map<string, Set<string>>();

  constructor(private readonly storage: DurableObjectStorage) {
    const sql = storage.sql;
    sql.exec(REPO_SCHEMA);
    const legacy = sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'repos'")
      .toArray();
    if (legacy.length > 0) storage.transactionSync(() => sql.exec(LEGACY_MIGRATION));
    for (const row of sql.exec<{ host: string; n: number }>(
      "SELECT host, n FROM repo_state_counts",
    ))
      this.#counts.set(row.host, row.n);
  }

  get(did: string): RepoState | undefined {
    const working = this.#unacked.get(did) ?? this.#dirty.get(did);
    if (working) return working;
    const cached = this.#cache.get(did);
    if (cached) return cached;
    const row = this.#stored(did);
    if (!row) return undefined;
    const state: RepoState = {
      did: row.did,
      host: row.host,
      rev: row.rev,
      head: row.head,
      data: row.data,
      active: row.active === 1,
      status: row.status,
      relayTakedown: false,
      flag: row.flag,
    };
    this.#remember(state);
    return state;
  }

  #stored(did: string): Row | undefined {
    return this.storage.sql.exec<Row>("SELECT * FROM repo_state WHERE did = ?", did).toArray()[0];
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
   * Writes every acknowledged change; returns what was written. Call inside the transaction
   * that also writes the hosts' cursors, so the two never disagree on disk.
   */
  writeAcknowledged(): RepoState[] {
    if (this.#dirty.size === 0) return [];
    const changed = [...this.#dirty.values()];
    this.#dirty.clear();
    const sql = this.storage.sql;
    const moved = new Set<string>();
    for (const s of changed) {
      const before = sql
        .exec<{ host: string }>("SELECT host FROM repo_state WHERE did = ?", s.did)
        .toArray()[0]?.host;
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
      sql.exec(
        `INSERT INTO repo_state (did, host, rev, head, data, active, status, flag)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(did) DO UPDATE SET host = excluded.host, rev = excluded.rev,
           head = excluded.head, data = excluded.data, active = excluded.active,
           status = excluded.status, flag = excluded.flag`,
        s.did,
        s.host,
        s.rev,
        s.head,
        s.data,
        s.active ? 1 : 0,
        s.status,
        s.flag,
      );
    }
    for (const host of moved) {
      sql.exec(
        "INSERT INTO repo_state_counts (host, n) VALUES (?, ?) ON CONFLICT(host) DO UPDATE SET n = excluded.n",
        host,
        this.#counts.get(host) ?? 0,
      );
    }
    return changed;
  }

  #remember(state: RepoState): void {
    if (this.#cache.size >= MEMORY_ENTRIES && !this.#cache.has(state.did)) {
      const oldest = this.#cache.keys().next().value;
      // unacknowledged and unwritten states live in their own maps: the cache may forget any
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(state.did, state);
  }
}
