// The state an ingester keeps per account of its hosts: the last rev, commit and MST root seen
// (for rev ordering and sync 1.1 continuity), the upstream status, and a relay takedown flag.
// Changes are held in memory and written in one transaction per flush, so a busy account costs
// one row write per flush, not one per event (rows written are billed: DESIGN.md). Losing the
// unflushed tail in a crash is safe: the upstream cursor is persisted no later than the next
// flush, and revs only move forward.

export type RepoState = {
  did: string;
  host: string;
  /** Last rev seen ("" when only an #account event was seen). */
  rev: string;
  head: string | null;
  data: string | null;
  active: boolean;
  status: string | null;
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
  readonly #dirty = new Map<string, RepoState>();

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(REPO_SCHEMA);
  }

  get(did: string): RepoState | undefined {
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

  set(state: RepoState): void {
    this.#remember(state);
    this.#dirty.set(state.did, state);
  }

  /** Accounts of a host, counting unflushed ones (for the per-host account limit). */
  countForHost(host: string): number {
    const stored =
      this.storage.sql
        .exec<{ n: number }>("SELECT COUNT(*) AS n FROM repos WHERE host = ?", host)
        .toArray()[0]?.n ?? 0;
    let fresh = 0;
    for (const state of this.#dirty.values()) {
      if (state.host === host && !this.#isStored(state.did)) fresh++;
    }
    return stored + fresh;
  }

  #isStored(did: string): boolean {
    return this.storage.sql.exec("SELECT 1 FROM repos WHERE did = ?", did).toArray().length > 0;
  }

  /** Writes every changed repo in one transaction; returns what was written. */
  flush(): RepoState[] {
    if (this.#dirty.size === 0) return [];
    const changed = [...this.#dirty.values()];
    this.#dirty.clear();
    const sql = this.storage.sql;
    this.storage.transactionSync(() => {
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
    });
    return changed;
  }

  #remember(state: RepoState): void {
    if (this.#cache.size >= MEMORY_ENTRIES && !this.#cache.has(state.did)) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined && !this.#dirty.has(oldest)) this.#cache.delete(oldest);
    }
    this.#cache.set(state.did, state);
  }
}
