import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { meterObject } from "../metering/meter";
import { PackedStore } from "../storage/packed-store";

// DID -> host, rev, head commit and status, for listRepos, getRepoStatus and getLatestCommit.
//
// Sharded by a hash of the DID (partition.ts repoIndexShard, REPO_INDEX_SHARDS objects) because
// reads are the load here: every getRepoStatus/getLatestCommit of the network would otherwise
// queue on one single-threaded object (~1,000 requests/s each, DESIGN.md). A lookup touches only
// its DID's shard, so read capacity grows with the shard count; only listRepos visits every
// shard, once per page. Writes stay cheap: ingesters coalesce repo changes and send one update
// per shard per reporting tick, never one per event.

export type RepoUpdate = {
  did: string;
  host: string;
  rev: string;
  head: string | null;
  active: boolean;
  status: string | null;
};

/**
 * A repo as readers see it: a relay takedown overrides what the host says (`active`, `status`);
 * `upstream` is what the host says (what a restore tells consumers).
 */
export type RepoEntry = RepoUpdate & {
  takendown: boolean;
  upstream: { active: boolean; status: string | null };
  updatedMs: number;
};

// Upstream state (written by ingesters: `active`, `status` are the account's status on its
// PDS) and the relay's own takedown (written by the admin, mirroring the Sequencer's takedowns
// table, which is the authority) are separate fields, so a later report from the host can
// never undo a takedown and a restore can tell the account's real status.
//
// Stored packed (storage/packed-store.ts): an ingester's report is one delta row however many
// accounts it names, not a row per account (rows written are billed: docs/cost.md).
// `repo_entries` (a row per account) and before it `repo_index` are earlier layouts, moved over
// once.
type Stored = [
  host: string,
  rev: string,
  head: string | null,
  active: boolean,
  status: string | null,
  takendown: boolean,
  updatedMs: number,
];

const STORE_NAME = "index_entries";

const LEGACY_INDEX_MIGRATION = `
CREATE TABLE IF NOT EXISTS repo_entries (
  did TEXT PRIMARY KEY, host TEXT NOT NULL, rev TEXT NOT NULL, head TEXT,
  active INTEGER NOT NULL, status TEXT, takendown INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO repo_entries SELECT did, host, rev, head, active, status, takendown, updated_ms
  FROM repo_index;
DROP TABLE repo_index;`;

type Row = {
  did: string;
  host: string;
  rev: string;
  head: string | null;
  active: number;
  status: string | null;
  takendown: number;
  updated_ms: number;
};

function toEntry(did: string, stored: Stored): RepoEntry {
  const [host, rev, head, active, status, takendown, updatedMs] = stored;
  return {
    did,
    host,
    rev,
    head,
    active: !takendown && active,
    status: takendown ? "takendown" : status,
    takendown,
    upstream: { active, status },
    updatedMs,
  };
}

function hasTable(sql: SqlStorage, name: string): boolean {
  return (
    sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray()
      .length > 0
  );
}

/** Moves the row-per-account layouts into the packed store, once. */
function migrateRows(storage: DurableObjectStorage, store: PackedStore<Stored>): void {
  const sql = storage.sql;
  if (hasTable(sql, "repo_index")) storage.transactionSync(() => sql.exec(LEGACY_INDEX_MIGRATION));
  if (!hasTable(sql, "repo_entries")) return;
  storage.transactionSync(() => {
    const count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM repo_entries").one().n;
    const rows = sql.exec<Row>("SELECT * FROM repo_entries ORDER BY did");
    store.importSorted(
      (function* () {
        for (const r of rows)
          yield [
            r.did,
            [r.host, r.rev, r.head, r.active === 1, r.status, r.takendown === 1, r.updated_ms],
          ] as const;
      })(),
      count,
    );
    sql.exec("DROP TABLE repo_entries");
  });
}

export class RepoIndex extends DurableObject<Env> {
  readonly #entries: PackedStore<Stored>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(this, ctx, env, "RepoIndex");
    this.#entries = new PackedStore<Stored>(ctx.storage, STORE_NAME);
    migrateRows(ctx.storage, this.#entries);
  }

  /** An ingester's coalesced changes for the DIDs of this shard: one delta row. */
  async applyRepoUpdates(updates: RepoUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    const now = Date.now();
    const entries = updates.map((u): [string, Stored] => {
      const takendown = this.#entries.get(u.did)?.[5] ?? false;
      return [u.did, [u.host, u.rev, u.head, u.active, u.status, takendown, now]];
    });
    this.ctx.storage.transactionSync(() => this.#entries.writeDelta(entries));
    this.#entries.compactIfDue();
  }

  async getRepo(did: string): Promise<RepoEntry | null> {
    const stored = this.#entries.get(did);
    return stored ? toEntry(did, stored) : null;
  }

  /**
   * Repos that have a commit (listRepos requires head and rev), ordered by DID, after `cursor`.
   * The Worker merges the pages of all shards; each shard answers at most `limit`.
   */
  async listRepos(cursor: string | null, limit: number): Promise<RepoEntry[]> {
    return this.#entries
      .scan(cursor ?? "", limit, (_did, s) => s[2] !== null && s[1] !== "")
      .map(([did, stored]) => toEntry(did, stored));
  }

  /** The relay's own takedown (admin), kept apart from the host's status. */
  async setTakedown(did: string, takendown: boolean): Promise<RepoEntry | null> {
    const stored = this.#entries.get(did);
    if (!stored) return null;
    const [host, rev, head, active, status] = stored;
    const next: Stored = [host, rev, head, active, status, takendown, Date.now()];
    this.ctx.storage.transactionSync(() => this.#entries.writeDelta([[did, next]]));
    return toEntry(did, next);
  }
}
