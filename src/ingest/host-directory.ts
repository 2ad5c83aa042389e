import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import type { Env } from "../env";
import { meterObject } from "../metering/meter";
import type { CrawlAnswer, DirectorySummary, HostDetail } from "../status/summary";
import { hostIngesterStub } from "../stubs";
import { CRAWL_ANSWERS_SCHEMA, loadCrawlAnswer, saveCrawlAnswer } from "./crawl-answer-log";
import { CrawlRateLimit } from "./crawl-rate-limit";
import {
  decodeProgress,
  encodeProgress,
  type HostProgress,
  progressMoved,
  progressOf,
} from "./host-progress";
import type { HostLimits, HostReport, HostStatus } from "./host-record";
import { directorySummary, hostDetail } from "./host-views";
import { ingesterObjectName } from "./partition";

// The registry of every host the relay knows, for listHosts/getHostStatus/metrics and the admin.
// One object, because hosts are few (thousands) and change rarely: ingesters report their hosts'
// status and counters once per watchdog tick (one call for all the hosts of an object), never
// per event. Bans, pins and limits are an admin's decisions and live only here; the ingester is
// told of them on every crawl and when an admin changes them.
//
// A host's row is written when something an operator must not lose changes (status, error,
// accounts, ingester, connection time, ban, pin, limits). Its progress (cursor, counters, event
// and attempt times: host-progress.ts) moves on every report of a busy host, so it is kept in
// memory and written for all hosts as one row (`host_progress`) at most every
// HOST_DIRECTORY_PERSIST_SECONDS; after a wake, the first read asks the ingesters holding
// connected hosts for theirs (#freshen), so readers never see progress go back.

/**
 * A host's last report from its ingester, with `status` overridden to `banned` when banned,
 * plus what only the directory knows. `ingester` is "" before the first report.
 */
export type HostEntry = HostReport & {
  banned: boolean;
  pinned: boolean;
  /** Admin-set limits; null means the defaults for new hosts. */
  limits: HostLimits | null;
  firstSeenMs: number;
  reportedMs: number | null;
};

export type RegisterOutcome =
  | { kind: "registered"; entry: HostEntry; created: boolean }
  | { kind: "banned"; entry: HostEntry }
  | { kind: "tooManyNewHosts"; maxNewHostsPerDay: number };

/** Whether requestCrawl may go on (before its describeServer probe), decided here in one call. */
export type CrawlAdmission =
  | { kind: "allowed" }
  | { kind: "banned" }
  | { kind: "rateLimited"; retryAfterSeconds: number; firstRefusal: boolean };

export type HostTotals = {
  hostsByStatus: Record<string, number>;
  accepted: number;
  droppedByReason: Record<string, number>;
};

const DAY_MS = 86_400_000;

// `seen_order` gives listHosts the order its lexicon recommends (first seen, oldest first) and a
// stable cursor that does not move when hosts are added.
// `added_by_admin`: added by an admin (a ban before any crawl, a requestCrawl with the admin
// token), so not counted against NEW_HOSTS_PER_DAY; the constructor adds it to tables of the
// earlier layout.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS host_directory (
  hostname TEXT PRIMARY KEY,
  seen_order INTEGER NOT NULL UNIQUE,
  first_seen_ms INTEGER NOT NULL,
  banned INTEGER NOT NULL DEFAULT 0,
  pinned INTEGER NOT NULL DEFAULT 0,
  limits TEXT,
  status TEXT NOT NULL DEFAULT 'idle',
  cursor INTEGER,
  account_count INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_attempt_ms INTEGER,
  connected_since_ms INTEGER,
  last_event_ms INTEGER,
  accepted INTEGER NOT NULL DEFAULT 0,
  dropped TEXT NOT NULL DEFAULT '{}',
  ingester TEXT NOT NULL DEFAULT '',
  reported_ms INTEGER,
  added_by_admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS host_progress (
  chunk INTEGER PRIMARY KEY,
  saved_ms INTEGER NOT NULL,
  body TEXT NOT NULL
) WITHOUT ROWID;`;

type Row = {
  hostname: string;
  seen_order: number;
  first_seen_ms: number;
  banned: number;
  pinned: number;
  limits: string | null;
  status: string;
  cursor: number | null;
  account_count: number;
  last_error: string | null;
  last_attempt_ms: number | null;
  connected_since_ms: number | null;
  last_event_ms: number | null;
  accepted: number;
  dropped: string;
  ingester: string;
  reported_ms: number | null;
  added_by_admin: number;
};

/**
 * The row, with `progress` over the row's own copy when it is at least as recent: the row's copy
 * is written with every change of status, the progress at most every persist interval, and after
 * a restart either may be the newer.
 */
function toEntry(row: Row, progress: HostProgress | undefined): HostEntry {
  const useProgress =
    progress !== undefined && (row.reported_ms === null || progress.reportedMs >= row.reported_ms);
  return {
    hostname: row.hostname,
    status: row.banned ? "banned" : (row.status as HostStatus),
    cursor: useProgress ? progress.cursor : row.cursor,
    accountCount: row.account_count,
    lastError: row.last_error,
    lastAttemptMs: useProgress ? progress.lastAttemptMs : row.last_attempt_ms,
    connectedSinceMs: row.connected_since_ms,
    lastEventMs: useProgress ? progress.lastEventMs : row.last_event_ms,
    counters: useProgress
      ? { accepted: progress.counters.accepted, dropped: { ...progress.counters.dropped } }
      : { accepted: row.accepted, dropped: JSON.parse(row.dropped) as Record<string, number> },
    ingester: row.ingester,
    banned: row.banned === 1,
    pinned: row.pinned === 1,
    limits: row.limits ? (JSON.parse(row.limits) as HostLimits) : null,
    firstSeenMs: row.first_seen_ms,
    reportedMs: useProgress ? progress.reportedMs : row.reported_ms,
  };
}

export class HostDirectory extends DurableObject<Env> {
  /** Each host's newest progress (loaded from `host_progress` at start, then from reports). */
  readonly #progress = new Map<string, HostProgress>();
  /** Whether `#progress` moved since it was last written. */
  #progressMoved = false;
  #progressSavedMs = 0;
  #progressRows = 0;
  readonly #persistMs: number;
  /** Ingesters whose report arrived since this object woke: their hosts' progress is current. */
  readonly #reportedSinceWake = new Set<string>();
  /**
   * Whether every ingester holding a connected host has reported or answered since the wake:
   * from then on reports keep the memory current, and reads skip the scan of every host row.
   */
  #freshSinceWake = false;
  readonly #crawlCallers = new CrawlRateLimit();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(this, ctx, env, "HostDirectory");
    this.#persistMs = readConfig(env).hostDirectoryPersistMs;
    ctx.storage.sql.exec(SCHEMA);
    const columns = ctx.storage.sql
      .exec<{ name: string }>("SELECT name FROM pragma_table_info('host_directory')")
      .toArray();
    if (!columns.some((c) => c.name === "added_by_admin"))
      ctx.storage.sql.exec(
        "ALTER TABLE host_directory ADD COLUMN added_by_admin INTEGER NOT NULL DEFAULT 0",
      );
    ctx.storage.sql.exec(CRAWL_ANSWERS_SCHEMA);
    for (const row of ctx.storage.sql.exec<{ saved_ms: number; body: string }>(
      "SELECT saved_ms, body FROM host_progress ORDER BY chunk",
    )) {
      for (const [hostname, progress] of decodeProgress(row.body))
        this.#progress.set(hostname, progress);
      this.#progressSavedMs = Math.max(this.#progressSavedMs, row.saved_ms);
      this.#progressRows++;
    }
  }

  #row(hostname: string): Row | undefined {
    return this.ctx.storage.sql
      .exec<Row>("SELECT * FROM host_directory WHERE hostname = ?", hostname)
      .toArray()[0];
  }

  #insert(hostname: string, nowMs: number, byAdmin = false): void {
    this.ctx.storage.sql.exec(
      `INSERT INTO host_directory (hostname, seen_order, first_seen_ms, added_by_admin)
       VALUES (?, (SELECT COALESCE(MAX(seen_order), 0) + 1 FROM host_directory), ?, ?)`,
      hostname,
      nowMs,
      byAdmin ? 1 : 0,
    );
  }

  #entry(hostname: string): HostEntry {
    const row = this.#row(hostname);
    if (!row) throw new Error(`host ${hostname} vanished from the directory`);
    return this.#toEntry(row);
  }

  #toEntry(row: Row): HostEntry {
    return toEntry(row, this.#progress.get(row.hostname));
  }

  async getHost(hostname: string): Promise<HostEntry | null> {
    await this.#freshen();
    const row = this.#row(hostname);
    return row ? this.#toEntry(row) : null;
  }

  /**
   * requestCrawl's first step: the caller's per-minute limit (in memory: crawl-rate-limit.ts;
   * `caller` null for the admin, who is not limited), then the host's ban.
   */
  async admitCrawl(
    hostname: string,
    caller: string | null,
    perMinute: number,
  ): Promise<CrawlAdmission> {
    if (caller !== null) {
      const verdict = this.#crawlCallers.take(caller, perMinute, Date.now());
      if (!verdict.ok)
        return {
          kind: "rateLimited",
          retryAfterSeconds: verdict.retryAfterSeconds,
          firstRefusal: verdict.firstRefusal,
        };
    }
    return this.#row(hostname)?.banned ? { kind: "banned" } : { kind: "allowed" };
  }

  /**
   * requestCrawl's registration, decided in one step so two crawls cannot race past the checks:
   * a banned host is refused, a known host is returned as it is, and a new host is admitted only
   * while fewer than `maxNewHostsPerDay` hosts were first seen in the last 24 hours, not counting
   * those an admin added. `maxNewHostsPerDay` null: the admin's own crawl, admitted and not
   * counted.
   */
  async registerHost(hostname: string, maxNewHostsPerDay: number | null): Promise<RegisterOutcome> {
    const known = this.#row(hostname);
    if (known) {
      const entry = this.#toEntry(known);
      return entry.banned
        ? { kind: "banned", entry }
        : { kind: "registered", entry, created: false };
    }
    const now = Date.now();
    if (maxNewHostsPerDay !== null) {
      const recent =
        this.ctx.storage.sql
          .exec<{ n: number }>(
            "SELECT COUNT(*) AS n FROM host_directory WHERE first_seen_ms > ? AND added_by_admin = 0",
            now - DAY_MS,
          )
          .toArray()[0]?.n ?? 0;
      if (recent >= maxNewHostsPerDay) return { kind: "tooManyNewHosts", maxNewHostsPerDay };
    }
    this.#insert(hostname, now, maxNewHostsPerDay === null);
    return { kind: "registered", entry: this.#entry(hostname), created: true };
  }

  /**
   * The ingesters' periodic report of each of their hosts. A host's row is written at once when
   * its status, error, account count, connection time or ingester changed (with its progress
   * riding along, at no extra row); its progress alone is kept in memory and written for all
   * hosts at most every HOST_DIRECTORY_PERSIST_SECONDS. A quiet host costs no row write.
   */
  async reportHosts(reports: HostReport[]): Promise<void> {
    this.#applyReports(reports);
    for (const r of reports) this.#reportedSinceWake.add(r.ingester);
  }

  /**
   * requestCrawl started or resumed a host: its ingester's report, and the answer the caller
   * gets, kept for the host's page (crawl-answer-log.ts). One call, where it took two.
   */
  async reportCrawled(report: HostReport, answer: CrawlAnswer): Promise<void> {
    await this.reportHosts([report]);
    try {
      saveCrawlAnswer(this.ctx.storage.sql, report.hostname, answer);
    } catch (err) {
      // the caller's answer matters more than the page's copy of it
      console.error(
        JSON.stringify({
          msg: "crawl answer not kept",
          hostname: report.hostname,
          error: String(err),
        }),
      );
    }
  }

  #applyReports(reports: HostReport[]): void {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const r of reports) {
        if (!this.#row(r.hostname)) this.#insert(r.hostname, now);
        const kept = [r.status, r.accountCount, r.lastError, r.connectedSinceMs, r.ingester];
        this.ctx.storage.sql.exec(
          `UPDATE host_directory SET status = ?, account_count = ?, last_error = ?,
             connected_since_ms = ?, ingester = ?, cursor = ?, last_attempt_ms = ?,
             last_event_ms = ?, accepted = ?, dropped = ?, reported_ms = ?
           WHERE hostname = ? AND NOT (status IS ? AND account_count IS ? AND last_error IS ?
             AND connected_since_ms IS ? AND ingester IS ?)`,
          ...kept,
          r.cursor,
          r.lastAttemptMs,
          r.lastEventMs,
          r.counters.accepted,
          JSON.stringify(r.counters.dropped),
          now,
          r.hostname,
          ...kept,
        );
        const progress = progressOf(r, now);
        if (progressMoved(this.#progress.get(r.hostname), progress)) this.#progressMoved = true;
        this.#progress.set(r.hostname, progress);
      }
      if (this.#progressMoved && now - this.#progressSavedMs >= this.#persistMs)
        this.#saveProgress(now);
    });
  }

  /**
   * Before a read: the progress of hosts held by ingesters that have not reported since this
   * object woke is asked of them. This object sleeps between reports and keeps progress in
   * memory, writing it at most every HOST_DIRECTORY_PERSIST_SECONDS, so after a wake its copy can
   * be that old; an active or throttled host's ingester holds its socket, is awake, and knows.
   * Idle, offline and banned hosts' rows were written with their progress at their last status
   * change. Costs one request per such ingester at the first read after a wake, none after.
   */
  async #freshen(): Promise<void> {
    if (this.#freshSinceWake) return;
    const stale = this.ctx.storage.sql
      .exec<{ ingester: string }>(
        `SELECT DISTINCT ingester FROM host_directory
         WHERE status IN ('active', 'throttled') AND ingester IS NOT NULL AND ingester != ''`,
      )
      .toArray()
      .map((r) => r.ingester)
      .filter((name) => !this.#reportedSinceWake.has(name));
    if (stale.length === 0) {
      this.#freshSinceWake = true;
      return;
    }
    const answers = await Promise.allSettled(
      stale.map((name) => hostIngesterStub(this.env, name).listHosts()),
    );
    answers.forEach((answer, i) => {
      // an ingester that fails to answer is asked again at the next read
      if (answer.status !== "fulfilled") return;
      this.#applyReports(answer.value);
      this.#reportedSinceWake.add(stale[i]!);
    });
    this.#freshSinceWake = answers.every((answer) => answer.status === "fulfilled");
  }

  /** Every host's progress, as few rows as fit (one at the full network's 2,000 hosts). */
  #saveProgress(nowMs: number): void {
    const bodies = encodeProgress(this.#progress);
    for (const [chunk, body] of bodies.entries())
      this.ctx.storage.sql.exec(
        `INSERT INTO host_progress (chunk, saved_ms, body) VALUES (?, ?, ?)
         ON CONFLICT(chunk) DO UPDATE SET saved_ms = excluded.saved_ms, body = excluded.body`,
        chunk,
        nowMs,
        body,
      );
    if (this.#progressRows > bodies.length)
      this.ctx.storage.sql.exec("DELETE FROM host_progress WHERE chunk >= ?", bodies.length);
    this.#progressRows = bodies.length;
    this.#progressSavedMs = nowMs;
    this.#progressMoved = false;
  }

  /** Hosts in the order they were first seen, after `cursor` (an opaque position), at most `limit`. */
  async listHosts(
    cursor: number | null,
    limit: number,
  ): Promise<{ hosts: HostEntry[]; cursor: number | null }> {
    await this.#freshen();
    const rows = this.ctx.storage.sql
      .exec<Row>(
        "SELECT * FROM host_directory WHERE seen_order > ? ORDER BY seen_order LIMIT ?",
        cursor ?? 0,
        limit,
      )
      .toArray();
    const last = rows.at(-1);
    return {
      hosts: rows.map((row) => this.#toEntry(row)),
      cursor: rows.length === limit && last ? last.seen_order : null,
    };
  }

  /** Bans (or unbans) a host, registering it first if needed: a ban can precede any crawl. */
  async setBanned(hostname: string, banned: boolean): Promise<HostEntry> {
    if (!this.#row(hostname)) this.#insert(hostname, Date.now(), true);
    this.ctx.storage.sql.exec(
      "UPDATE host_directory SET banned = ? WHERE hostname = ?",
      banned ? 1 : 0,
      hostname,
    );
    return this.#entry(hostname);
  }

  async setPinned(hostname: string, pinned: boolean): Promise<HostEntry | null> {
    this.ctx.storage.sql.exec(
      "UPDATE host_directory SET pinned = ? WHERE hostname = ?",
      pinned ? 1 : 0,
      hostname,
    );
    return this.getHost(hostname);
  }

  async setLimits(hostname: string, limits: HostLimits): Promise<HostEntry | null> {
    this.ctx.storage.sql.exec(
      "UPDATE host_directory SET limits = ? WHERE hostname = ?",
      JSON.stringify(limits),
      hostname,
    );
    return this.getHost(hostname);
  }

  /**
   * An account's document now names another host than `oldHost` (an ingester saw the move):
   * the object holding `oldHost` forgets its cached copy, so the old PDS stops speaking for the
   * account at once rather than when the copy expires. The object is the one the partition rule
   * gives for the host's pin, and the one that last reported it if that differs (a hand-over in
   * progress). A host the relay never crawled holds no copy.
   */
  async identityMoved(did: string, oldHost: string): Promise<void> {
    const row = this.#row(oldHost);
    if (!row) return;
    const objects = new Set([
      ingesterObjectName(oldHost, row.pinned === 1, readConfig(this.env).ingestShards),
    ]);
    if (/^(host|shard):/.test(row.ingester)) objects.add(row.ingester);
    await Promise.all(
      [...objects].map((name) => hostIngesterStub(this.env, name).invalidateIdentity(did)),
    );
  }

  /** The status page's view of all hosts (a bounded list, totals, who holds the busy ones). */
  async statusSummary(): Promise<DirectorySummary> {
    await this.#freshen();
    return directorySummary(
      this.ctx.storage.sql
        .exec<Row>("SELECT * FROM host_directory")
        .toArray()
        .map((row) => this.#toEntry(row)),
    );
  }

  /** A host's page: its entry, the object holding it, what requestCrawl last answered. */
  async hostPage(hostname: string): Promise<{
    host: HostDetail | null;
    holder: string;
    crawlAnswer: CrawlAnswer | null;
  }> {
    await this.#freshen();
    const row = this.#row(hostname);
    const entry = row ? this.#toEntry(row) : null;
    return {
      host: entry ? hostDetail(entry) : null,
      holder: entry?.ingester ?? "",
      crawlAnswer: loadCrawlAnswer(this.ctx.storage.sql, hostname),
    };
  }

  /** Keeps requestCrawl's answer for the host's page (crawl-answer-log.ts: one row). */
  async noteCrawlAnswer(hostname: string, answer: CrawlAnswer): Promise<void> {
    saveCrawlAnswer(this.ctx.storage.sql, hostname, answer);
  }

  /** Sums for /metrics, computed here so only a few numbers cross the RPC. */
  async totals(): Promise<HostTotals> {
    await this.#freshen();
    const hostsByStatus: Record<string, number> = {};
    const droppedByReason: Record<string, number> = {};
    let accepted = 0;
    for (const row of this.ctx.storage.sql.exec<Row>("SELECT * FROM host_directory")) {
      const entry = this.#toEntry(row);
      hostsByStatus[entry.status] = (hostsByStatus[entry.status] ?? 0) + 1;
      accepted += entry.counters.accepted;
      for (const [reason, n] of Object.entries(entry.counters.dropped))
        droppedByReason[reason] = (droppedByReason[reason] ?? 0) + n;
    }
    return { hostsByStatus, accepted, droppedByReason };
  }
}
