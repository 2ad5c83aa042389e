import { abortAllDurableObjects, env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { sequencerStub } from "../../src/stubs";
import {
  crawl,
  ingester,
  newHost,
  push,
  relayedCommits,
  sequencedThrough,
  until,
  upstreamState,
} from "./ingest-support";
import { RELAY } from "./support";

// HostIngester against scripted upstreams (test/support/scripted-pds.ts) that send real signed
// commits, and hostile ones, over real WebSockets on loopback.

const control = inject("upstreamControlUrl");

describe("HostIngester", () => {
  it("drops forged, foreign, backwards, malformed and oversized events, counts why, and keeps serving", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const script = (await (
      await fetch(`${control}/pds/${host.id}/hostile`, { method: "POST" })
    ).json()) as {
      goodSeqs: number[];
      drops: Record<string, number>;
    };
    const last = Math.max(...script.goodSeqs);
    await sequencedThrough(host.hostname, last);
    const report = await ingester(host.hostname).getHost(host.hostname);
    expect(report?.counters.dropped).toEqual(script.drops);
    expect(report?.counters.accepted).toBe(2);
    expect((await relayedCommits(host.did)).length).toBe(2);

    // good events after the bad ones still flow
    const more = await push(host, 3);
    await sequencedThrough(host.hostname, Math.max(...more));
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(5);
    const revs = commits.map(([, rev]) => rev);
    expect([...revs].sort()).toEqual(revs);
  });

  it("throttles a host over its rate limit without losing or buffering its events", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    // default limit: 50 events/s with a 2 s burst; send 250 at once
    const seqs = await push(host, 250);
    await until(
      "the host to be throttled",
      () => ingester(host.hostname).getHost(host.hostname),
      (r) => r?.status === "throttled" || (r?.lastError ?? "").includes("throttled"),
    );
    await sequencedThrough(host.hostname, Math.max(...seqs), 60_000).catch(async (err) => {
      throw new Error(
        `${err}; host: ${JSON.stringify(await ingester(host.hostname).getHost(host.hostname))}`,
      );
    });
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(250);
    expect(new Set(commits.map(([, rev]) => rev)).size).toBe(250);
  });

  it("a new host that floods faster than validation is read again from its first event, not from the live offset", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await ingester(host.hostname).setLimits(host.hostname, {
      eventsPerSecond: 1_000_000,
      maxAccounts: 10,
    });
    // more at once than an ingester queues (here the shard's 6 MB): 800 frames of ~16 KB. It
    // stops reading before it has processed any, so the host has no cursor yet
    const seqs = await push(host, 800, 16_000);
    await sequencedThrough(host.hostname, Math.max(...seqs), 60_000);
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(800);
    expect(new Set(commits.map(([, rev]) => rev)).size).toBe(800);
    // it was stopped and read again: a subscription after the crawl's
    expect((await upstreamState(host)).subscriptions).toBeGreaterThanOrEqual(2);
  });

  it("resumes from its persisted cursor after being aborted mid-stream: no loss, no duplicate", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 40))));
    const pending = push(host, 60);
    await new Promise((r) => setTimeout(r, 30));
    await abortAllDurableObjects();
    const last = Math.max(...(await pending));
    // the watchdog alarm reconnects from the persisted cursor
    await until(
      "the ingester to reconnect",
      () => runDurableObjectAlarm(ingester(host.hostname)),
      () => true,
    );
    await sequencedThrough(host.hostname, last, 30_000);
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(100);
    expect(new Set(commits.map(([, rev]) => rev)).size).toBe(100);
  });

  it("stops reconnecting to a host that answers FutureCursor, says why, and resumes after an admin cursor reset", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 3))));
    // the host loses its data: our cursor (3) is now ahead of it
    await fetch(`${control}/pds/${host.id}/reset`, { method: "POST" });
    const report = await until(
      "the host to be stopped",
      async () => {
        await runDurableObjectAlarm(ingester(host.hostname));
        return ingester(host.hostname).getHost(host.hostname);
      },
      (r) => r?.status === "offline",
    );
    expect(report?.lastError).toContain("FutureCursor");
    await runDurableObjectAlarm(ingester(host.hostname));
    const upstream = (await (await fetch(`${control}/pds/${host.id}`)).json()) as {
      subscribers: number;
    };
    expect(upstream.subscribers).toBe(0);

    const admin = { Authorization: "Bearer test-admin-token", "Content-Type": "application/json" };
    const reset = await SELF.fetch(`${RELAY}/admin/hosts/reset-cursor`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ hostname: host.hostname }),
    });
    expect(reset.status).toBe(200);
    const fresh = await push(host, 2);
    await until(
      "the host's new events",
      async () => {
        await ingester(host.hostname).flush();
        return sequencerStub(env).getHostCursor(host.hostname);
      },
      (cursor) => cursor === Math.max(...fresh),
    );
  });

  it("disconnects a silent host (idle, no open socket) and loses nothing while it sleeps", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 5))));
    // HOST_IDLE_AFTER_SECONDS is 3 in this project's config
    await new Promise((r) => setTimeout(r, 3_300));
    await runDurableObjectAlarm(ingester(host.hostname));
    const report = await ingester(host.hostname).getHost(host.hostname);
    expect(report).toMatchObject({ status: "idle", connectedSinceMs: null });
    const upstream = (await (await fetch(`${control}/pds/${host.id}`)).json()) as {
      subscribers: number;
    };
    expect(upstream.subscribers).toBe(0);

    const whileAsleep = await push(host, 7);
    // the host's requestCrawl ping wakes it; it catches up by cursor
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, Math.max(...whileAsleep));
    expect((await relayedCommits(host.did)).length).toBe(12);
  });
});
