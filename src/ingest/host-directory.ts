import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import type { HostLimits, HostReport, HostStatus } from "./host-record";

// The registry of every host the relay knows, for listHosts/getHostStatus and the admin: one
// object, because hosts are few (thousands) and change rarely; ingesters report their hosts'
// status and counters in one call per watchdog tick, not per event. Bans, pins and limits set by
// an admin live here and are handed to the ingester on every crawl.

export type HostEntry = HostReport & {
  banned: boolean;
  pinned: boolean;
  limits: HostLimits | null;
  createdMs: number;
};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hosts (
  hostname TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  banned INTEGER NOT NULL DEFAULT 0,
  pinned INTEGER NOT NULL DEFAULT 0,
  limits TEXT,
  report TEXT
);`;

type Row = {
  hostname: string;
  created_ms: number;
  banned: number;
  pinned: number;
  limits: string | null;
  report: string | null;
};

function toEntry(row: Row): HostEntry {
  const report: HostReport = row.report
    ? (JSON.parse(row.report) as HostReport)
    : {
        hostname: row.hostname,
        status: "idle",
        cursor: null,
        accountCount: 0,
        lastError: null,
        lastAttemptMs: null,
        connectedSinceMs: null,
        lastEventMs: null,
        counters: { accepted: 0, dropped: {} },
        ingester: "",
      };
  const status: HostStatus = row.banned ? "banned" : report.status;
  return {
    ...report,
    status,
    banned: row.banned === 1,
    pinned: row.pinned === 1,
    limits: row.limits ? (JSON.parse(row.limits) as HostLimits) : null,
    createdMs: row.created_ms,
  };
}

export class HostDirectory extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
  }

  #row(hostname: string): Row | undefined {
    return this.ctx.storage.sql
      .exec<Row>("SELECT * FROM hosts WHERE hostname = ?", hostname)
      .toArray()[0];
  }

  async getHost(hostname: string): Promise<HostEntry | null> {
    const row = this.#row(hostname);
    return row ? toEntry(row) : null;
  }

  /** Registers a host on requestCrawl; returns what the crawl needs to know. */
  async registerHost(
    hostname: string,
  ): Promise<{ entry: HostEntry; created: boolean; hostsCreatedLastDay: number }> {
    const now = Date.now();
    let created = false;
    if (!this.#row(hostname)) {
      this.ctx.storage.sql.exec(
        "INSERT INTO hosts (hostname, created_ms) VALUES (?, ?)",
        hostname,
        now,
      );
      created = true;
    }
    const recent =
      this.ctx.storage.sql
        .exec<{ n: number }>(
          "SELECT COUNT(*) AS n FROM hosts WHERE created_ms > ?",
          now - 86_400_000,
        )
        .toArray()[0]?.n ?? 0;
    return { entry: toEntry(this.#row(hostname) as Row), created, hostsCreatedLastDay: recent };
  }

  /** Forgets a host registered by a crawl that then failed its checks. */
  async forgetHost(hostname: string): Promise<void> {
    this.ctx.storage.sql.exec(
      "DELETE FROM hosts WHERE hostname = ? AND report IS NULL AND banned = 0",
      hostname,
    );
  }

  async reportHosts(reports: HostReport[]): Promise<void> {
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      for (const r of reports) {
        sql.exec(
          `INSERT INTO hosts (hostname, created_ms, report) VALUES (?, ?, ?)
           ON CONFLICT(hostname) DO UPDATE SET report = excluded.report`,
          r.hostname,
          Date.now(),
          JSON.stringify(r),
        );
      }
    });
  }

  /** Hosts ordered by name, after `cursor` (a hostname), at most `limit`. */
  async listHosts(cursor: string | null, limit: number): Promise<HostEntry[]> {
    return this.ctx.storage.sql
      .exec<Row>(
        "SELECT * FROM hosts WHERE hostname > ? ORDER BY hostname LIMIT ?",
        cursor ?? "",
        limit,
      )
      .toArray()
      .map(toEntry);
  }

  async setBanned(hostname: string, banned: boolean): Promise<HostEntry> {
    if (!this.#row(hostname))
      this.ctx.storage.sql.exec(
        "INSERT INTO hosts (hostname, created_ms) VALUES (?, ?)",
        hostname,
        Date.now(),
      );
    this.ctx.storage.sql.exec(
      "UPDATE hosts SET banned = ? WHERE hostname = ?",
      banned ? 1 : 0,
      hostname,
    );
    return toEntry(this.#row(hostname) as Row);
  }

  async setPinned(hostname: string, pinned: boolean): Promise<HostEntry | null> {
    this.ctx.storage.sql.exec(
      "UPDATE hosts SET pinned = ? WHERE hostname = ?",
      pinned ? 1 : 0,
      hostname,
    );
    const row = this.#row(hostname);
    return row ? toEntry(row) : null;
  }

  async setLimits(hostname: string, limits: HostLimits): Promise<HostEntry | null> {
    this.ctx.storage.sql.exec(
      "UPDATE hosts SET limits = ? WHERE hostname = ?",
      JSON.stringify(limits),
      hostname,
    );
    const row = this.#row(hostname);
    return row ? toEntry(row) : null;
  }
}
