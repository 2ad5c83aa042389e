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

export const REPO_SCHEMA = `
CREATE TABLE IF NOT EXISTS repos (
  did TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  rev TEXT NOT NULL,
  head TEXT,
  data TEXT,
  active INTEGER NOT NULL,
  status TEXT,
  relay_takedown INTEGER NOT NULL DEFAULT 0,
  flag TEXT
);
CREATE INDEX IF NOT EXISTS repos_by_host ON repos (host);`;

type Row = {
  did: string;
  host: string;
  rev: string;
  head: string | null;
  data: string | null;
  active: number;
  status: string | null;
  relay_takedown: number;
  flag: string | null;
};

const MEMORY_ENTRIES = 100_000;

export class RepoStateStore {
  readonly #cache = new Map<string, RepoState>();
  /** Working state of events not yet acknowledged by the Sequencer (never evicted). */
  readonly #unacked = new Map<string, RepoState>();
  /** Acknowledged state not yet written. */
  readonly #dirty = new Map<string, RepoState>();

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(REPO_SCHEMA);
  }

  get(did: string): RepoState | undefined {
    const working = this.#unacked.get(did) ?? this.#dirty.get(did);
    if (working) return working;
    const cached = this.#cache.get(did);
    if (cached) return cached;
    const row = this.storage.sql.exec<Row>("SELECT * FROM repos WHERE did = ?", did).toArray()[0];
    if (!row) return undefined;
    const state: RepoState = {
      did: row.did,
      host: row.host,
      rev: row.rev,
      head: row.head,
      data: row.data,
      active: row.active === 1,
      status: row.status,
      relayTakedown: row.relay_takedown === 1,
      flag: row.flag,
    };
    this.#remember(state);
    return state;
  }

  /** The effect of an event accepted but not yet acknowledged: validation sees it at once. */
  setWorking(state: RepoState): void {
    this.#unacked.set(state.did, state);
  }

  /** The Sequencer acknowledged the event that produced `state`: it may now be written. */
  markAcknowledged(state: RepoState): void {
    this.#dirty.set(state.did, state);
    this.#remember(state);
    if (this.#unacked.get(state.did) === state) this.#unacked.delete(state.did);
  }

  /** Accounts of a host, counting unflushed ones (for the per-host account limit). */
  countForHost(host: string): number {
    const stored =
      this.storage.sql
        .exec<{ n: number }>("SELECT COUNT(*) AS n FROM repos WHERE host = ?", host)
        .toArray()[0]?.n ?? 0;
    const fresh = new Set<string>();
    for (const layer of [this.#dirty, this.#unacked]) {
      for (const state of layer.values()) {
        if (state.host === host && !fresh.has(state.did) && !this.#isStored(state.did))
          fresh.add(state.did);
      }
    }
    return stored + fresh.size;
  }

  #isStored(did: string): boolean {
    return this.storage.sql.exec("SELECT 1 FROM repos WHERE did = ?", did).toArray().length > 0;
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
    for (const s of changed) {
      sql.exec(
        `INSERT OR REPLACE INTO repos (did, host, rev, head, data, active, status, relay_takedown, flag)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        s.did,
        s.host,
        s.rev,
        s.head,
        s.data,
        s.active ? 1 : 0,
        s.status,
        s.relayTakedown ? 1 : 0,
        s.flag,
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
