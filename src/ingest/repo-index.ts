import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

// DID -> host, rev, head commit and status, for listRepos, getRepoStatus and getLatestCommit.
// Sharded by a hash of the DID (partition.ts repoIndexShard): lookups for different accounts land
// on different objects, so no single object answers every query of the network, while each
// ingester sends one coalesced update per shard per reporting tick rather than one per event.

export type RepoUpdate = {
  did: string;
  host: string;
  rev: string;
  head: string | null;
  active: boolean;
  status: string | null;
};

export type RepoEntry = RepoUpdate & { updatedMs: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS repos (
  did TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  rev TEXT NOT NULL,
  head TEXT,
  active INTEGER NOT NULL,
  status TEXT,
  updated_ms INTEGER NOT NULL
);`;

type Row = {
  did: string;
  host: string;
  rev: string;
  head: string | null;
  active: number;
  status: string | null;
  updated_ms: number;
};

function toEntry(row: Row): RepoEntry {
  return {
    did: row.did,
    host: row.host,
    rev: row.rev,
    head: row.head,
    active: row.active === 1,
    status: row.status,
    updatedMs: row.updated_ms,
  };
}

export class RepoIndex extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
  }

  async applyRepoUpdates(updates: RepoUpdate[]): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const u of updates) {
        sql.exec(
          "INSERT OR REPLACE INTO repos (did, host, rev, head, active, status, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
      .exec<Row>("SELECT * FROM repos WHERE did = ?", did)
      .toArray()[0];
    return row ? toEntry(row) : null;
  }

  /** Repos with a head commit, ordered by DID, after `cursor`. */
  async listRepos(cursor: string | null, limit: number): Promise<RepoEntry[]> {
    return this.ctx.storage.sql
      .exec<Row>(
        "SELECT * FROM repos WHERE did > ? AND head IS NOT NULL ORDER BY did LIMIT ?",
        cursor ?? "",
        limit,
      )
      .toArray()
      .map(toEntry);
  }

  /** Admin takedown/restore as seen by readers (the ingester enforces it on the stream). */
  async setStatus(did: string, active: boolean, status: string | null): Promise<RepoEntry | null> {
    this.ctx.storage.sql.exec(
      "UPDATE repos SET active = ?, status = ?, updated_ms = ? WHERE did = ?",
      active ? 1 : 0,
      status,
      Date.now(),
      did,
    );
    return this.getRepo(did);
  }
}
