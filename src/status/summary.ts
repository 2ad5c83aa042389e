import type { MinuteRate } from "./rate-history";

// What the status pages show, as plain data: the objects that hold the numbers (Sequencer,
// HostDirectory, HostIngesters, Fanouts) answer in these shapes, and render.ts turns them into
// HTML. Only what the public may see is here: no admin token, no pin or holder object.

export type SegmentSummary = {
  firstSeq: number;
  lastSeq: number;
  firstMs: number;
  lastMs: number;
  bytes: number;
};

export type LogSummary = {
  headSeq: number;
  /** Oldest seq still served for replay, and when it was written. */
  oldestSeq: number | null;
  oldestMs: number | null;
  writable: boolean;
  hotRows: number;
  hotBytes: number;
  segments: number;
  /** Newest first. */
  newestSegments: SegmentSummary[];
};

export type HostSummary = {
  hostname: string;
  status: string;
  accountCount: number;
  lastError: string | null;
  lastEventMs: number | null;
  accepted: number;
  droppedByReason: Record<string, number>;
  /** Mean accepted events/s over the last few minutes the history knows; null if none. */
  eventsPerSecond: number | null;
};

/** The HostDirectory's part of the status page. */
export type DirectorySummary = {
  total: number;
  byStatus: Record<string, number>;
  accepted: number;
  droppedByReason: Record<string, number>;
  /** The hosts listed on the page (problems first, then the busiest), at most a bounded few. */
  shown: HostSummary[];
  /** The ingester objects holding a host that sends (active or throttled): they have rates. */
  holders: string[];
};

/** Events/s per minute as the ingesters know them, and since when (null: none answered). */
export type RelayRates = { rates: MinuteRate[]; sinceMs: number | null; error?: string };

/** requestCrawl answers are kept for this many hostnames (ingest/crawl-answer-log.ts). */
export const MAX_CRAWL_ANSWERS_SHOWN = 1000;

/** What requestCrawl last answered for a hostname. */
export type CrawlAnswer = { atMs: number; status: number; error?: string; message?: string };

export type HostDetail = HostSummary & {
  cursor: number | null;
  firstSeenMs: number;
  lastAttemptMs: number | null;
  connectedSinceMs: number | null;
  banned: boolean;
  limits: { eventsPerSecond: number; maxAccounts: number } | null;
};

export type HostPageData = {
  nowMs: number;
  hostname: string;
  /** null: the relay does not know the host (it may still have a crawl answer). */
  host: HostDetail | null;
  rates: RelayRates;
  crawlAnswer: CrawlAnswer | null;
};

/** Consumers of one Fanout object, keyed by its name (a region column can join the key). */
export type ConsumerGroup = {
  key: string;
  consumers: number | null;
  live: number | null;
  replaying: number | null;
  queuedReplays: number | null;
  error?: string;
};

export type StatusPageData = {
  nowMs: number;
  log: LogSummary | null;
  logError?: string;
  hosts: DirectorySummary | null;
  hostsError?: string;
  rates: RelayRates;
  consumers: ConsumerGroup[];
};

/** The events/s shown beside a host, and the relay's, is the mean of this many recent minutes. */
export const RECENT_MINUTES = 5;

/** At most this many hosts are listed on `/`; the rest are counted, and on their own pages. */
export const MAX_HOSTS_LISTED = 200;

const STATUS_ORDER = ["offline", "throttled", "banned", "active", "idle"];

function statusRank(status: string): number {
  const i = STATUS_ORDER.indexOf(status);
  return i === -1 ? STATUS_ORDER.length : i;
}

/** Hosts an operator should look at first: offline, throttled, banned; then the busiest. */
export function hostsToList(hosts: HostSummary[], limit = MAX_HOSTS_LISTED): HostSummary[] {
  return [...hosts]
    .sort(
      (a, b) =>
        statusRank(a.status) - statusRank(b.status) ||
        b.accepted - a.accepted ||
        (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0),
    )
    .slice(0, limit);
}

/** Why a host is in its status, in an operator's words (docs/behaviours.md, Hosts). */
export function explainStatus(status: string): string {
  switch (status) {
    case "active":
      return "the relay is connected and reads the host's firehose";
    case "idle":
      return "the host sent nothing for HOST_IDLE_AFTER_SECONDS, so the relay disconnected to save cost; it resumes from its cursor on the next requestCrawl or the sweep every 30 minutes";
    case "throttled":
      return "the host sent more than its events/s limit; the socket is closed and reopened from the cursor when the rate budget refills (nothing is lost)";
    case "offline":
      return "the relay gave up connecting after repeated failures, or the host answered FutureCursor; it tries again on the next requestCrawl";
    case "banned":
      return "an admin banned the host: the relay does not connect and refuses its requestCrawl";
    default:
      return "unknown status";
  }
}
