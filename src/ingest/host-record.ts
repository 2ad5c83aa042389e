import type { HostLimits } from "./host-limits";

// A host as its HostIngester persists it. `status` is what getHostStatus reports (the lexicon's
// active/idle/offline/throttled/banned); `lastError` says why, for operators.

export type HostStatus = "active" | "idle" | "offline" | "throttled" | "banned";

export type { HostLimits };

export type HostRecord = {
  hostname: string;
  status: HostStatus;
  /**
   * The persisted resume point: an upstream seq through which the Sequencer holds every event
   * and the persisted account state matches (written with that state, once per report), or,
   * for a new host, the seq just before the first frame it sent. Null only before any frame.
   */
  cursor: number | null;
  pinned: boolean;
  limits: HostLimits;
  failures: number;
  lastError: string | null;
  lastAttemptMs: number | null;
  connectedSinceMs: number | null;
  lastEventMs: number | null;
  nextAttemptMs: number | null;
  /** Set after an upstream FutureCursor: reconnecting would only repeat it. */
  stopped: boolean;
  /** Rows written before `previousIngesters`: the one object the host came from. */
  previousIngester?: string | null;
  /**
   * The objects that carried this host before hand-overs (pin/unpin, a change of INGEST_SHARDS),
   * most recent first: they keep the state of the host's accounts, inherited the first time each
   * account is met here (ingest/hand-over.ts).
   */
  previousIngesters?: string[];
  /** When the relay first subscribed to this host live (no cursor), until a frame fixed one. */
  subscribedAtMs?: number | null;
  /** Events written before this time are skipped (replaying a host that never sent a frame). */
  skipBeforeMs?: number | null;
  /** On an object of its own by automatic placement, not by an admin (ingest/placement.ts). */
  autoPinned?: boolean;
  counters: HostCounters;
  /**
   * When this copy was written (a stamp that only grows): a host is persisted both as its
   * `host_records` row and inside account-state delta rows (repo-state.ts); the newer copy wins.
   */
  savedAt?: number;
};

export type HostCounters = {
  accepted: number;
  dropped: Record<string, number>;
  /** Accepted events whose since/prevData did not follow the last state seen (sync 1.1). */
  flagged?: number;
};

// WITHOUT ROWID: a write is one billed row. `hosts` was the earlier layout, moved over once.
export const HOSTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS host_records (
  hostname TEXT PRIMARY KEY,
  record TEXT NOT NULL
) WITHOUT ROWID;`;

const LEGACY_HOSTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hosts'";
const MIGRATE_LEGACY_HOSTS = `
INSERT OR IGNORE INTO host_records (hostname, record) SELECT hostname, record FROM hosts;
DROP TABLE hosts;`;

/** Creates the hosts table, moving rows of the earlier layout over once. */
export function prepareHostsTable(storage: DurableObjectStorage): void {
  storage.sql.exec(HOSTS_SCHEMA);
  if (storage.sql.exec(LEGACY_HOSTS).toArray().length > 0)
    storage.transactionSync(() => storage.sql.exec(MIGRATE_LEGACY_HOSTS));
}

export function loadHosts(sql: SqlStorage): Map<string, HostRecord> {
  const hosts = new Map<string, HostRecord>();
  for (const row of sql.exec<{ hostname: string; record: string }>(
    "SELECT hostname, record FROM host_records",
  )) {
    const record = JSON.parse(row.record) as HostRecord;
    seenStamp(record.savedAt);
    hosts.set(row.hostname, record);
  }
  return hosts;
}

/**
 * Applies host records written since their rows (in account-state delta rows, oldest first):
 * a copy replaces the row's only if it is newer, and a host without a row (released since) is
 * not brought back.
 */
export function applyNewerHosts(hosts: Map<string, HostRecord>, records: string[]): void {
  for (const json of records) {
    const record = JSON.parse(json) as HostRecord;
    seenStamp(record.savedAt);
    const current = hosts.get(record.hostname);
    if (current && (record.savedAt ?? 0) > (current.savedAt ?? 0))
      hosts.set(record.hostname, record);
  }
}

/** A host record as a delta row carries it (stamped now). */
export function hostSnapshot(record: HostRecord): string {
  record.savedAt = nextStamp();
  return JSON.stringify(record);
}

// Stamps grow even if the clock steps back after a restart: loading raises the floor to the
// newest stamp stored.
let lastStamp = 0;

function nextStamp(): number {
  lastStamp = Math.max(Date.now(), lastStamp + 1);
  return lastStamp;
}

function seenStamp(stamp: number | undefined): void {
  if (stamp !== undefined && stamp > lastStamp) lastStamp = stamp;
}

export function saveHosts(storage: DurableObjectStorage, records: Iterable<HostRecord>): void {
  storage.transactionSync(() => writeHosts(storage.sql, records));
}

/** Writes host rows without a transaction of its own (for callers that hold one). */
export function writeHosts(sql: SqlStorage, records: Iterable<HostRecord>): void {
  for (const r of records) {
    sql.exec(
      "INSERT INTO host_records (hostname, record) VALUES (?, ?) ON CONFLICT(hostname) DO UPDATE SET record = excluded.record",
      r.hostname,
      hostSnapshot(r),
    );
  }
}

export function newHostRecord(hostname: string, limits: HostLimits, pinned: boolean): HostRecord {
  return {
    hostname,
    status: "active",
    cursor: null,
    pinned,
    limits,
    failures: 0,
    lastError: null,
    lastAttemptMs: null,
    connectedSinceMs: null,
    lastEventMs: null,
    nextAttemptMs: null,
    stopped: false,
    counters: { accepted: 0, dropped: {} },
  };
}

/** What the ingester reports to the HostDirectory (and the admin host list shows). */
export type HostReport = {
  hostname: string;
  status: HostStatus;
  cursor: number | null;
  accountCount: number;
  lastError: string | null;
  lastAttemptMs: number | null;
  connectedSinceMs: number | null;
  lastEventMs: number | null;
  counters: HostCounters;
  ingester: string;
};
