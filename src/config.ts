import type { Env } from "./env";
import { parseRegions, type Region } from "./fanout/regions";
import { PLC_BACKOFF, type PlcBackoff, parsePlcUrls } from "./identity/plc-sources";
import { MAX_OBJECT_QUEUED_BYTES } from "./ingest/intake";
import type { PlacementPolicy } from "./ingest/placement";

/** Every setting of the relay, typed, with its default. The README's configuration table mirrors this. */
export interface Config {
  devMode: boolean;
  /** PLC directories (plc.directory, mirrors), asked in this order with health tracking. */
  plcUrls: string[];
  /** A failed PLC source is skipped this long, doubled per further failure (plc-sources.ts). */
  plcBackoff: PlcBackoff;
  /** While no PLC source answers, cached DID documents serve this long past their TTL. */
  identityStaleGraceMs: number;
  adminToken: string | undefined;
  firstSeq: number;
  replayWindowMs: number;
  ingestShards: number;
  repoIndexShards: number;
  /** Fanout shards per region (per the one global region when no region is enabled). */
  fanoutShards: number;
  /** Regions with Fanouts of their own (fanout/regions.ts); empty: one global region. */
  fanoutRegions: Region[];
  hostIdleAfterMs: number;
  hostStallAfterMs: number;
  hostMaxFailures: number;
  newHostEventsPerSecond: number;
  newHostMaxAccounts: number;
  /** Hostname suffixes whose hosts get the trusted limits (ingest/host-limits.ts). */
  trustedHostSuffixes: string[];
  trustedHostEventsPerSecond: number;
  trustedHostMaxAccounts: number;
  /** New hosts requestCrawl admits per 24 hours (an admin's own crawls are not counted against it). */
  newHostsPerDay: number;
  /** requestCrawl calls one client IP may make per minute (per HostDirectory lifetime, approximate). */
  requestCrawlPerIpPerMinute: number;
  segmentMaxBytes: number;
  segmentMaxAgeMs: number;
  ingestBatchWindowMs: number;
  /** Bytes of frames an ingester queues for validation over all its hosts (ingest/intake.ts). */
  ingestQueueMaxBytes: number;
  /** At most one hot-log row per this many ms while appends keep arriving; 0: one per append. */
  sequencerGroupCommitMs: number;
  hostReportIntervalMs: number;
  /** The HostDirectory writes hosts' cursors and counters at most this often (docs/behaviours.md). */
  hostDirectoryPersistMs: number;
  fanoutDeliveryIntervalMs: number;
  consumerMinBytesPerSecond: number;
  consumerMaxBacklogBytes: number;
  /** Consumers a Fanout replays from storage at once; the rest wait in line (docs/behaviours.md). */
  fanoutMaxConcurrentReplays: number;
  /** Automatic placement of busy hosts on objects of their own (ingest/placement.ts). */
  placement: PlacementPolicy;
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`config ${name} must be a non-negative integer, got ${value}`);
  return n;
}

function plcBackoff(value: string | undefined): PlcBackoff {
  const baseMs =
    Math.max(1, positiveInt(value, PLC_BACKOFF.baseMs / 1000, "PLC_RETRY_AFTER_SECONDS")) * 1000;
  return { baseMs, maxMs: Math.max(baseMs, PLC_BACKOFF.maxMs) };
}

/**
 * TRUSTED_HOST_SUFFIXES: comma-separated DNS suffixes, lowercased. A leading dot (`.host.bsky.network`)
 * means subdomains only; without it the name itself matches too (host-limits.ts).
 */
function hostSuffixes(value: string | undefined, name: string): string[] {
  if (value === undefined || value.trim() === "") return [];
  return value.split(",").map((raw) => {
    const suffix = raw.trim().toLowerCase();
    const labels = (suffix.startsWith(".") ? suffix.slice(1) : suffix).split(".");
    if (!labels.every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)))
      throw new Error(
        `config ${name} must be comma-separated DNS suffixes like .host.bsky.network, got ${JSON.stringify(raw.trim())}`,
      );
    return suffix;
  });
}

export function readConfig(env: Env): Config {
  return {
    devMode: env.DEV_MODE === "true",
    plcUrls: parsePlcUrls(env.PLC_URL),
    plcBackoff: plcBackoff(env.PLC_RETRY_AFTER_SECONDS),
    identityStaleGraceMs:
      positiveInt(env.IDENTITY_STALE_GRACE_SECONDS, 86_400, "IDENTITY_STALE_GRACE_SECONDS") * 1000,
    adminToken: env.ADMIN_TOKEN || undefined,
    firstSeq: Math.max(1, positiveInt(env.FIRST_SEQ, 1, "FIRST_SEQ")),
    replayWindowMs: positiveInt(env.REPLAY_WINDOW_HOURS, 72, "REPLAY_WINDOW_HOURS") * 3_600_000,
    ingestShards: Math.max(1, positiveInt(env.INGEST_SHARDS, 1, "INGEST_SHARDS")),
    repoIndexShards: Math.max(1, positiveInt(env.REPO_INDEX_SHARDS, 4, "REPO_INDEX_SHARDS")),
    fanoutShards: Math.max(1, positiveInt(env.FANOUT_SHARDS, 1, "FANOUT_SHARDS")),
    fanoutRegions: parseRegions(env.FANOUT_REGIONS),
    hostIdleAfterMs:
      positiveInt(env.HOST_IDLE_AFTER_SECONDS, 900, "HOST_IDLE_AFTER_SECONDS") * 1000,
    hostStallAfterMs:
      positiveInt(env.HOST_STALL_AFTER_SECONDS, 120, "HOST_STALL_AFTER_SECONDS") * 1000,
    hostMaxFailures: positiveInt(env.HOST_MAX_FAILURES, 8, "HOST_MAX_FAILURES"),
    newHostEventsPerSecond: positiveInt(
      env.NEW_HOST_EVENTS_PER_SECOND,
      50,
      "NEW_HOST_EVENTS_PER_SECOND",
    ),
    newHostMaxAccounts: positiveInt(env.NEW_HOST_MAX_ACCOUNTS, 100, "NEW_HOST_MAX_ACCOUNTS"),
    trustedHostSuffixes: hostSuffixes(env.TRUSTED_HOST_SUFFIXES, "TRUSTED_HOST_SUFFIXES"),
    // the reference relay's trusted limits (indigo cmd/relay: 5,000 events/s, 10,000,000 accounts)
    trustedHostEventsPerSecond: Math.max(
      1,
      positiveInt(env.TRUSTED_HOST_EVENTS_PER_SECOND, 5_000, "TRUSTED_HOST_EVENTS_PER_SECOND"),
    ),
    trustedHostMaxAccounts: positiveInt(
      env.TRUSTED_HOST_MAX_ACCOUNTS,
      10_000_000,
      "TRUSTED_HOST_MAX_ACCOUNTS",
    ),
    newHostsPerDay: positiveInt(env.NEW_HOSTS_PER_DAY, 50, "NEW_HOSTS_PER_DAY"),
    requestCrawlPerIpPerMinute: positiveInt(
      env.REQUEST_CRAWL_PER_IP_PER_MINUTE,
      30,
      "REQUEST_CRAWL_PER_IP_PER_MINUTE",
    ),
    segmentMaxBytes: positiveInt(env.SEGMENT_MAX_BYTES, 16 * 1024 * 1024, "SEGMENT_MAX_BYTES"),
    segmentMaxAgeMs:
      positiveInt(env.SEGMENT_MAX_AGE_SECONDS, 600, "SEGMENT_MAX_AGE_SECONDS") * 1000,
    ingestBatchWindowMs: Math.max(
      1,
      positiveInt(env.INGEST_BATCH_WINDOW_MS, 90, "INGEST_BATCH_WINDOW_MS"),
    ),
    ingestQueueMaxBytes: Math.max(
      1,
      positiveInt(env.INGEST_QUEUE_MAX_BYTES, MAX_OBJECT_QUEUED_BYTES, "INGEST_QUEUE_MAX_BYTES"),
    ),
    sequencerGroupCommitMs: positiveInt(
      env.SEQUENCER_GROUP_COMMIT_MS,
      80,
      "SEQUENCER_GROUP_COMMIT_MS",
    ),
    hostReportIntervalMs:
      positiveInt(env.HOST_REPORT_INTERVAL_SECONDS, 30, "HOST_REPORT_INTERVAL_SECONDS") * 1000,
    hostDirectoryPersistMs:
      positiveInt(env.HOST_DIRECTORY_PERSIST_SECONDS, 600, "HOST_DIRECTORY_PERSIST_SECONDS") * 1000,
    fanoutDeliveryIntervalMs: positiveInt(
      env.FANOUT_DELIVERY_INTERVAL_MS,
      25,
      "FANOUT_DELIVERY_INTERVAL_MS",
    ),
    consumerMinBytesPerSecond: Math.max(
      1,
      positiveInt(
        env.CONSUMER_MIN_BYTES_PER_SECOND,
        32 * 1024 * 1024,
        "CONSUMER_MIN_BYTES_PER_SECOND",
      ),
    ),
    consumerMaxBacklogBytes: positiveInt(
      env.CONSUMER_MAX_BACKLOG_BYTES,
      64 * 1024 * 1024,
      "CONSUMER_MAX_BACKLOG_BYTES",
    ),
    fanoutMaxConcurrentReplays: Math.max(
      1,
      positiveInt(env.FANOUT_MAX_CONCURRENT_REPLAYS, 2, "FANOUT_MAX_CONCURRENT_REPLAYS"),
    ),
    placement: {
      pinAtPerSecond: positiveInt(env.AUTO_PIN_EVENTS_PER_SECOND, 20, "AUTO_PIN_EVENTS_PER_SECOND"),
      unpinBelowPerSecond: positiveInt(
        env.AUTO_UNPIN_EVENTS_PER_SECOND,
        2,
        "AUTO_UNPIN_EVENTS_PER_SECOND",
      ),
      windowMs:
        Math.max(
          1,
          positiveInt(env.AUTO_PLACEMENT_WINDOW_SECONDS, 120, "AUTO_PLACEMENT_WINDOW_SECONDS"),
        ) * 1000,
      quietWindowsToUnpin: 15,
    },
  };
}
