import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { readConfig } from "../../src/config";
import { ingesterObjectName } from "../../src/ingest/partition";
import {
  crawl,
  type Host,
  ingester,
  newHost,
  push,
  relayedCommits,
  sequencedThrough,
  upstreamState,
} from "./ingest-support";
import { ADMIN_HEADERS, post } from "./xrpc-helpers";

// An ingester's memory is bounded over all its hosts, not only per host (ingest/intake.ts): when
// several hosts of one shard send their backlogs at once (woken together, as after a restart),
// past INGEST_QUEUE_MAX_BYTES (6 MB in these tests) hosts stop being read and resume by cursor
// once there is room, and every event still arrives once, in order.

const FRAMES_PER_HOST = 200;
/** Bytes added to each commit's record: ~16 KB frames. */
const PADDING = 15_000;
const plc = inject("plcUrl");

async function slowPlc(did: string, ms: number): Promise<void> {
  await fetch(`${plc}/_slow?did=${encodeURIComponent(did)}&ms=${ms}`, { method: "POST" });
}

/** New hosts until `count` of them share one ingester shard. */
async function hostsOfOneShard(count: number): Promise<Host[]> {
  const shards = readConfig(env).ingestShards;
  const byShard = new Map<string, Host[]>();
  for (;;) {
    const host = await newHost();
    const shard = ingesterObjectName(host.hostname, false, shards);
    const group = [...(byShard.get(shard) ?? []), host];
    byShard.set(shard, group);
    if (group.length === count) return group;
  }
}

describe("HostIngester queue over all its hosts", () => {
  it("stops reading hosts while the shard's queue is full, resumes them, and loses nothing", async () => {
    const hosts = await hostsOfOneShard(5);
    const shard = ingester((hosts[0] as Host).hostname);
    for (const host of hosts) {
      expect((await crawl(host.hostname)).status).toBe(200);
      // no rate limit (set by the operator, so it outlives the next requestCrawl): only the
      // queue limits apply
      const limits = { hostname: host.hostname, eventsPerSecond: 1_000_000, maxAccounts: 10 };
      expect((await post("/admin/hosts/limits", limits, ADMIN_HEADERS)).status).toBe(200);
    }
    const before = await shard.queueStats();
    expect(before.maxBytes).toBe(6_000_000);
    // each host gets a cursor, then goes idle (HOST_IDLE_AFTER_SECONDS is 3 here): no socket
    for (const host of hosts)
      await sequencedThrough(host.hostname, Math.max(...(await push(host, 1))));
    await new Promise((r) => setTimeout(r, 3_300));
    await runDurableObjectAlarm(shard);
    for (const host of hosts) expect(await upstreamState(host)).toMatchObject({ subscribers: 0 });

    // while nobody reads them, each host writes a backlog that fits its own queue (5,000 frames,
    // 8 MB): 200 frames of ~16 KB; together ~16 MB, more than twice what the shard may hold. Their
    // pings wake them all at once, as after a restart. Frames queue while validation waits (with
    // a known identity it keeps up frame by frame): each account's document is looked up again,
    // from a directory that answers after 1.5 s, while its backlog arrives.
    const backlogs = await Promise.all(hosts.map((host) => push(host, FRAMES_PER_HOST, PADDING)));
    for (const host of hosts) {
      await slowPlc(host.did, 1_500);
      await shard.invalidateIdentity(host.did);
    }
    await Promise.all(hosts.map((host) => crawl(host.hostname)));
    for (const [i, host] of hosts.entries())
      await sequencedThrough(host.hostname, Math.max(...(backlogs[i] as number[])), 90_000);

    for (const host of hosts) await slowPlc(host.did, 0);
    const stats = await shard.queueStats();
    // at most one frame past the limit (a frame is always taken into an empty queue)
    expect(stats.highWaterBytes).toBeGreaterThan(stats.maxBytes / 2);
    expect(stats.highWaterBytes).toBeLessThanOrEqual(stats.maxBytes + 64 * 1024);
    expect(stats.queuedBytes).toBe(0);
    expect(stats.waitingForRoom).toBe(0);
    const stopped = [];
    for (const host of hosts) {
      const report = await shard.getHost(host.hostname);
      if ((report?.lastError ?? "").includes("the ingester's queue is full")) stopped.push(host);
      // resumed (and, once done, maybe asleep again: HOST_IDLE_AFTER_SECONDS is 3 here)
      expect(["active", "idle"]).toContain(report?.status);
    }
    expect(stopped.length).toBeGreaterThan(0);
    for (const host of hosts) {
      const commits = await relayedCommits(host.did);
      expect(commits.length).toBe(FRAMES_PER_HOST + 1);
      const revs = commits.map(([, rev]) => rev);
      expect(new Set(revs).size).toBe(FRAMES_PER_HOST + 1);
      expect([...revs].sort()).toEqual(revs);
    }
  });
});
