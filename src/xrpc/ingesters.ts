import type { Config } from "../config";
import type { Env } from "../env";
import type { HandOver } from "../ingest/hand-over";
import type { HostEntry } from "../ingest/host-directory";
import { hostLimitsFor } from "../ingest/host-limits";
import type { HostLimits, HostRecord, HostReport } from "../ingest/host-record";
import { ingesterObjectName, isIngesterObjectName } from "../ingest/partition";
import type { CrawlAnswer } from "../status/summary";
import { hostDirectoryStub, hostIngesterStub } from "../stubs";

// How the Worker reaches a host's HostIngester: the partition rule (ingest/partition.ts) applied
// to the directory's pin, and the limits an admin set or those of trusted or new hosts. When the
// rule changed (INGEST_SHARDS) and the host's holder has not handed it over yet, actions on the
// host go to the holder, and starting it hands it over first.

/** The limits a host is crawled with: an admin's, else the trusted or new-host ones (host-limits.ts). */
export function limitsOf(
  config: Config,
  entry: Pick<HostEntry, "hostname" | "limits">,
): HostLimits {
  return hostLimitsFor(entry.hostname, entry.limits, {
    newHost: {
      eventsPerSecond: config.newHostEventsPerSecond,
      maxAccounts: config.newHostMaxAccounts,
    },
    trusted: {
      eventsPerSecond: config.trustedHostEventsPerSecond,
      maxAccounts: config.trustedHostMaxAccounts,
    },
    trustedSuffixes: config.trustedHostSuffixes,
  });
}

/** The object that holds a host: the one that last reported it, else the one the rule names. */
export function holderOf(
  config: Config,
  entry: Pick<HostEntry, "hostname" | "pinned" | "ingester">,
): string {
  return isIngesterObjectName(entry.ingester)
    ? entry.ingester
    : ingesterObjectName(entry.hostname, entry.pinned, config.ingestShards);
}

export function ingesterOf(
  env: Env,
  config: Config,
  entry: Pick<HostEntry, "hostname" | "pinned" | "ingester">,
) {
  return hostIngesterStub(env, holderOf(config, entry));
}

/**
 * Starts or resumes a registered host's ingestion (requestCrawl, admin unban and pin), and puts
 * the ingester's answer in the directory at once: the caller sees the host's new status in
 * getHostStatus now, not at the ingester's next reporting tick. A host whose holder is not the
 * object the rule names now (INGEST_SHARDS changed) is released there and handed over, as a
 * pin moves it: never started afresh beside the old socket. A requestCrawl's answer
 * (`crawlAnswer`, for the host's page) is kept by the same directory call.
 */
export async function startIngesting(
  env: Env,
  config: Config,
  entry: HostEntry,
  options: { handOver?: HandOver; autoPinned?: boolean; crawlAnswer?: CrawlAnswer } = {},
): Promise<HostReport> {
  const objectName = ingesterObjectName(entry.hostname, entry.pinned, config.ingestShards);
  let handOver = options.handOver;
  if (!handOver && isIngesterObjectName(entry.ingester) && entry.ingester !== objectName) {
    const record = await hostIngesterStub(env, entry.ingester).release(entry.hostname);
    handOver = { from: entry.ingester, record };
  }
  const report = await hostIngesterStub(env, objectName).crawl(objectName, entry.hostname, {
    pinned: entry.pinned,
    limits: limitsOf(config, entry),
    ...(handOver ? { handOver } : {}),
    ...(options.autoPinned !== undefined ? { autoPinned: options.autoPinned } : {}),
  });
  const directory = hostDirectoryStub(env);
  if (options.crawlAnswer) await directory.reportCrawled(report, options.crawlAnswer);
  else await directory.reportHosts([report]);
  return report;
}

/**
 * Moves a host between its shard and an object of its own (admin pin, automatic placement):
 * the object it leaves flushes and hands over its record and cursor, the directory records the
 * new place, and the new object stores the cursor before it connects and inherits the
 * accounts' state. `release` lets the object being left (`from`) do its part without calling
 * itself over RPC.
 */
export async function moveHost(
  env: Env,
  config: Config,
  hostname: string,
  pinned: boolean,
  options: {
    auto: boolean;
    from?: string;
    release?: (hostname: string) => Promise<HostRecord | null>;
  },
): Promise<{ moved: boolean; cursor: number | null }> {
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (!entry || entry.pinned === pinned) return { moved: false, cursor: null };
  const from = options.from ?? holderOf(config, entry);
  const record = options.release
    ? await options.release(hostname)
    : await hostIngesterStub(env, from).release(hostname);
  const moved = await hostDirectoryStub(env).setPinned(hostname, pinned);
  if (moved && !moved.banned)
    await startIngesting(env, config, moved, {
      handOver: { from, record },
      ...(pinned ? { autoPinned: options.auto } : {}),
    });
  return { moved: true, cursor: record?.cursor ?? null };
}
