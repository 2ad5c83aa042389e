import type { HostCounters, HostReport } from "./host-record";

// The part of a host's report that moves while the host is busy: its cursor, counters and the
// times of its last event and connection attempt. An active host changes it on every report
// (every HOST_REPORT_INTERVAL_SECONDS), so the HostDirectory keeps it in memory and writes it
// for all hosts at once, at most every HOST_DIRECTORY_PERSIST_SECONDS (a row per host per report
// was ~26 M rows a month at full network, docs/cost.md). It is for operators to read: the
// ingester's own cursor, not this copy, is where a host resumes.

export type HostProgress = {
  cursor: number | null;
  lastAttemptMs: number | null;
  lastEventMs: number | null;
  counters: HostCounters;
  /** When the host was last reported. */
  reportedMs: number;
};

/**
 * Hosts per stored row: a row is at most 2 MB (Durable Object SQLite), and a host's progress is
 * ~150 bytes of JSON, so 2,000 hosts (the full network) fit in one row with room for large
 * drop-reason maps.
 */
export const PROGRESS_HOSTS_PER_ROW = 2_000;

export function progressOf(report: HostReport, nowMs: number): HostProgress {
  return {
    cursor: report.cursor,
    lastAttemptMs: report.lastAttemptMs,
    lastEventMs: report.lastEventMs,
    counters: { accepted: report.counters.accepted, dropped: { ...report.counters.dropped } },
    reportedMs: nowMs,
  };
}

function sameDropped(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** Whether anything but the report time moved (a quiet host's report changes nothing to write). */
export function progressMoved(before: HostProgress | undefined, after: HostProgress): boolean {
  return (
    before === undefined ||
    before.cursor !== after.cursor ||
    before.lastAttemptMs !== after.lastAttemptMs ||
    before.lastEventMs !== after.lastEventMs ||
    before.counters.accepted !== after.counters.accepted ||
    !sameDropped(before.counters.dropped, after.counters.dropped)
  );
}

/** The rows' bodies for these hosts, PROGRESS_HOSTS_PER_ROW per row. */
export function encodeProgress(hosts: Iterable<[string, HostProgress]>): string[] {
  const all = [...hosts];
  const bodies: string[] = [];
  for (let i = 0; i < all.length; i += PROGRESS_HOSTS_PER_ROW)
    bodies.push(JSON.stringify(Object.fromEntries(all.slice(i, i + PROGRESS_HOSTS_PER_ROW))));
  return bodies;
}

export function decodeProgress(body: string): [string, HostProgress][] {
  return Object.entries(JSON.parse(body) as Record<string, HostProgress>);
}
