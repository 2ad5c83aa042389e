import type { Config } from "../config";
import type { Env } from "../env";
import type { HostEntry } from "../ingest/host-directory";
import type { HostLimits, HostReport } from "../ingest/host-record";
import { ingesterObjectName } from "../ingest/partition";
import { hostDirectoryStub, hostIngesterStub } from "../stubs";

// How the Worker reaches a host's HostIngester: the partition rule (ingest/partition.ts) applied
// to the directory's pin, and the limits an admin set or the defaults for new hosts.

export function defaultLimits(config: Config): HostLimits {
  return { eventsPerSecond: config.newHostEventsPerSecond, maxAccounts: config.newHostMaxAccounts };
}

export function ingesterOf(
  env: Env,
  config: Config,
  entry: Pick<HostEntry, "hostname" | "pinned">,
) {
  return hostIngesterStub(
    env,
    ingesterObjectName(entry.hostname, entry.pinned, config.ingestShards),
  );
}

/**
 * Starts or resumes a registered host's ingestion (requestCrawl, admin unban and pin), and puts
 * the ingester's answer in the directory at once: the caller sees the host's new status in
 * getHostStatus now, not at the ingester's next reporting tick.
 */
export async function startIngesting(
  env: Env,
  config: Config,
  entry: HostEntry,
  cursor?: number | null,
  autoPinned?: boolean,
): Promise<HostReport> {
  const objectName = ingesterObjectName(entry.hostname, entry.pinned, config.ingestShards);
  // a cursor is handed over only when the host moves (pin/unpin): the object it leaves keeps the
  // state of its accounts, which the new one inherits as it meets them
  const handOver =
    cursor !== undefined
      ? {
          cursor,
          previousIngester: ingesterObjectName(entry.hostname, !entry.pinned, config.ingestShards),
        }
      : {};
  const report = await hostIngesterStub(env, objectName).crawl(objectName, entry.hostname, {
    pinned: entry.pinned,
    limits: entry.limits ?? defaultLimits(config),
    ...handOver,
    ...(autoPinned !== undefined ? { autoPinned } : {}),
  });
  await hostDirectoryStub(env).reportHosts([report]);
  return report;
}

/**
 * Moves a host between its shard and an object of its own (admin pin, automatic placement):
 * the object it leaves flushes and hands over its cursor, the directory records the new place,
 * and the new object stores the cursor before it connects and inherits the accounts' state.
 * `release` lets the object being left do its part without calling itself over RPC.
 */
export async function moveHost(
  env: Env,
  config: Config,
  hostname: string,
  pinned: boolean,
  options: { auto: boolean; release?: (hostname: string) => Promise<number | null> },
): Promise<{ moved: boolean; cursor: number | null }> {
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (!entry || entry.pinned === pinned) return { moved: false, cursor: null };
  const cursor = options.release
    ? await options.release(hostname)
    : await ingesterOf(env, config, entry).release(hostname);
  const moved = await hostDirectoryStub(env).setPinned(hostname, pinned);
  if (moved && !moved.banned)
    await startIngesting(env, config, moved, cursor, pinned ? options.auto : undefined);
  return { moved: true, cursor };
}
