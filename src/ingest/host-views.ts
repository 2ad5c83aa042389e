import {
  type DirectorySummary,
  type HostDetail,
  type HostSummary,
  hostsToList,
} from "../status/summary";
import type { HostEntry } from "./host-directory";
import { isIngesterObjectName } from "./partition";

// The HostDirectory's answers for the status pages: its entries in the pages' public shapes
// (status/summary.ts). The events/s come from the ingesters (they are awake while their hosts
// send; this object sleeps between reports), so they are left empty here.

export function hostSummary(entry: HostEntry): HostSummary {
  return {
    hostname: entry.hostname,
    status: entry.status,
    accountCount: entry.accountCount,
    lastError: entry.lastError,
    lastEventMs: entry.lastEventMs,
    accepted: entry.counters.accepted,
    droppedByReason: { ...entry.counters.dropped },
    eventsPerSecond: null,
  };
}

export function hostDetail(entry: HostEntry): HostDetail {
  return {
    ...hostSummary(entry),
    cursor: entry.cursor,
    firstSeenMs: entry.firstSeenMs,
    lastAttemptMs: entry.lastAttemptMs,
    connectedSinceMs: entry.connectedSinceMs,
    banned: entry.banned,
    limits: entry.limits,
  };
}

/** Only a connected (or throttled) host has rates worth waking its object for. */
export function isSending(status: string): boolean {
  return status === "active" || status === "throttled";
}

/** Every host counted and summed, a bounded list, and the objects holding hosts that send. */
export function directorySummary(entries: Iterable<HostEntry>): DirectorySummary {
  const byStatus: Record<string, number> = {};
  const droppedByReason: Record<string, number> = {};
  const holders = new Set<string>();
  let accepted = 0;
  const summaries: HostSummary[] = [];
  for (const entry of entries) {
    byStatus[entry.status] = (byStatus[entry.status] ?? 0) + 1;
    accepted += entry.counters.accepted;
    for (const [reason, n] of Object.entries(entry.counters.dropped))
      droppedByReason[reason] = (droppedByReason[reason] ?? 0) + n;
    summaries.push(hostSummary(entry));
    if (isSending(entry.status) && isIngesterObjectName(entry.ingester))
      holders.add(entry.ingester);
  }
  return {
    total: summaries.length,
    byStatus,
    accepted,
    droppedByReason,
    shown: hostsToList(summaries),
    holders: [...holders].sort(),
  };
}
