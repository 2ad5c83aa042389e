import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { meterObject } from "../metering/meter";

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
// table, which is the authority) are separate columns, so a later report from the host can
// never undo a takedown and a restore can tell the account's real status.
// WITHOUT ROWID: a write is billed as one row (a rowid table with a text key also writes its
// implicit index: docs/cost.md). `repo_index` is the earlier layout, moved over once.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS repo_entries (
  did TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  rev TEXT NOT NULL,
  head TEXT,
  active INTEGER NOT NULL,
  status TEXT,
  takendown INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL
) WITHOUT ROWID;`;

const LEGACY_MIGRATION = `
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

function toEntry(row: Row): RepoEntry {
  const takendown = row.takendown === 1;
  return {
    did: row.did,
    host: row.host,
    rev: row.rev,
    head: row.head,
    active: !takendown && row.active === 1,
    status: takendown ? "takendown" : row.status,
    takendown,
    upstream: { active: row.active === 1, status: row.status },
    updatedMs: row.updated_ms,
  };
}

export class RepoIndex extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(this, ctx, env, "RepoIndex");
    ctx.storage.sql.exec(SCHEMA);
    const legacy = ctx.storage.sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'repo_index'")
      .toArray();
    if (legacy.length > 0)
      ctx.storage.transactionSync(() => ctx.storage.sql.exec(LEGACY_MIGRATION));
  }

  /** An ingester's coalesced changes for the DIDs of this shard, in one transaction. */
  async applyRepoUpdates(updates: RepoUpdate[]): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const u of updates) {
        sql.exec(
          `INSERT INTO repo_entries (did, host, rev, head, active, status, updated_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(did) DO UPDATE SET host = excluded.host, rev = excluded.rev,
             head = excluded.head, active = excluded.active, status = excluded.status,
             updated_ms = excluded.updated_ms`,
          u.did,
          u.host,
          u.rev,
          u.head,
          u.active ? 1 : 0,
          u.status,
          now,
        );
      }
    });
  }

  async getRepo(did: string): Promise<RepoEntry | null> {
    const row = this.ctx.storage.sql
      .exec<Row>("SELECT * FROM repo_entries WHERE did = ?", did)
      .toArray()[0];
    return row ? toEntry(row) : null;
  }

  /**
   * Repos that have a commit (listRepos requires head and rev), ordered by DID, after `cursor`.
   * The Worker merges the pages of all shards; each shard answers at most `limit`.
   */
  async listRepos(cursor: string | null, limit: number): Promise<RepoEntry[]> {
    return this.ctx.storage.sql
      .exec<Row>(
        "SELECT * FROM repo_entries WHERE did > ? AND head IS NOT NULL AND rev != '' ORDER BY did LIMIT ?",
        cursor ?? "",
        limit,
      )
      .toArray()
      .map(toEntry);
  }

  /** The relay's own takedown (admin), kept apart from the host's status. */
  async setTakedown(did: string, takendown: boolean): Promise<RepoEntry | null> {
    this.ctx.storage.sql.exec(
      "UPDATE repo_entries SET takendown = ?, updated_ms = ? WHERE did = ?",
      takendown ? 1 : 0,
      Date.now(),
      did,
    );
    return this.getRepo(did);
  }
}
