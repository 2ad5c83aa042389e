import { type CounterHistory, recentRate } from "../status/rate-history";
import {
  type CrawlAnswer,
  type HostDetail,
  type HostSummary,
  type HostsSummary,
  hostsToList,
  RECENT_MINUTES,
} from "../status/summary";
import type { HostEntry } from "./host-directory";

// The HostDirectory's answers for the status pages: its entries in the pages' public shapes
// (status/summary.ts), with each host's recent events/s from the in-memory history.

export function hostSummary(entry: HostEntry, history: CounterHistory, nowMs: number): HostSummary {
  return {
    hostname: entry.hostname,
    status: entry.status,
    accountCount: entry.accountCount,
    lastError: entry.lastError,
    lastEventMs: entry.lastEventMs,
    accepted: entry.counters.accepted,
    droppedByReason: { ...entry.counters.dropped },
    eventsPerSecond: recentRate(
      history.rates(entry.hostname, nowMs, RECENT_MINUTES),
      RECENT_MINUTES,
      "accepted",
    ),
  };
}

export function hostDetail(entry: HostEntry, history: CounterHistory, nowMs: number): HostDetail {
  return {
    ...hostSummary(entry, history, nowMs),
    cursor: entry.cursor,
    firstSeenMs: entry.firstSeenMs,
    lastAttemptMs: entry.lastAttemptMs,
    connectedSinceMs: entry.connectedSinceMs,
    banned: entry.banned,
    limits: entry.limits,
  };
}

/** Every host summed and counted, the relay's rates summed from the hosts', a bounded list. */
export function hostsSummary(
  entries: Iterable<HostEntry>,
  history: CounterHistory,
  nowMs: number,
  historySinceMs: number,
): HostsSummary {
  const byStatus: Record<string, number> = {};
  const droppedByReason: Record<string, number> = {};
  let accepted = 0;
  const summaries: HostSummary[] = [];
  const series = [];
  for (const entry of entries) {
    byStatus[entry.status] = (byStatus[entry.status] ?? 0) + 1;
    accepted += entry.counters.accepted;
    for (const [reason, n] of Object.entries(entry.counters.dropped))
      droppedByReason[reason] = (droppedByReason[reason] ?? 0) + n;
    summaries.push(hostSummary(entry, history, nowMs));
    series.push(history.rates(entry.hostname, nowMs));
  }
  return {
    total: summaries.length,
    byStatus,
    accepted,
    droppedByReason,
    shown: hostsToList(summaries),
    relayRates: history.sumRates(series, nowMs),
    historySinceMs,
  };
}

/** Answers kept per hostname; the oldest is forgotten first (strangers may call requestCrawl). */
export const MAX_CRAWL_ANSWERS = 1000;

export function rememberCrawlAnswer(
  answers: Map<string, CrawlAnswer>,
  hostname: string,
  answer: CrawlAnswer,
): void {
  answers.delete(hostname);
  answers.set(hostname, answer);
  while (answers.size > MAX_CRAWL_ANSWERS) {
    const oldest = answers.keys().next().value;
    if (oldest === undefined) break;
    answers.delete(oldest);
  }
}
