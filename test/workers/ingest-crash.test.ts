import { abortAllDurableObjects, env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config";
import { ingesterObjectName } from "../../src/ingest/partition";
import { hostIngesterStub, sequencerStub } from "../../src/stubs";
import {
  crawl,
  dropConnections,
  type Host,
  ingester,
  newHost,
  push,
  pushAccount,
  relayedCommits,
  repeat,
  sequencedThrough,
  until,
  upstreamState,
} from "./ingest-support";
import { RELAY } from "./support";

// Crash safety of the HostIngester: after its object is aborted at a bad moment (the workerd
// equivalent of a kill -9 of its process), nothing is lost, nothing duplicated, and the account
// state validation uses is the state of the sequenced log. The kill -9 runs of the whole relay
// are in test/faults.

/** Runs the watchdog (as after a restart) until everything through `upstreamSeq` is sequenced. */
async function recoverThrough(host: Host, upstreamSeq: number): Promise<void> {
  await until(
    `${host.hostname} sequenced through ${upstreamSeq} after the restart`,
    async () => {
      await runDurableObjectAlarm(ingester(host.hostname));
      await ingester(host.hostname).flush();
      return sequencerStub(env).getHostCursor(host.hostname);
    },
    (cursor) => (cursor ?? 0) >= upstreamSeq,
    60_000,
  );
}

describe("HostIngester crash safety", () => {
  it("a new host aborted before any of its events was sequenced resumes from its first frame, not live", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    // more than the default burst (100): it is throttled before most are processed
    const seqs = await push(host, 300);
    await abortAllDurableObjects();
    await recoverThrough(host, Math.max(...seqs));
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(300);
    expect(new Set(commits.map(([, rev]) => rev)).size).toBe(300);
  });

  it("a new host subscribed live that had sent nothing when aborted is read from its log: what it wrote meanwhile arrives", async () => {
    const host = await newHost();
    const before = await push(host, 3); // written before the relay subscribed
    expect((await crawl(host.hostname)).status).toBe(200);
    await until(
      "the relay to subscribe",
      () => upstreamState(host),
      (s) => s.subscribers === 1,
    );
    await abortAllDurableObjects();
    const owed = await push(host, 5);
    await recoverThrough(host, Math.max(...owed));
    const revs = (await relayedCommits(host.did)).map(([, rev]) => rev);
    // every owed event once, in order; events written just before the crawl may come too (the
    // relay skips by the events' own times, allowing for clock skew)
    expect(new Set(revs).size).toBe(revs.length);
    expect([...revs].sort()).toEqual(revs);
    expect(revs.length).toBeGreaterThanOrEqual(owed.length);
    expect(revs.length).toBeLessThanOrEqual(owed.length + before.length);
  });

  it("after an abort, validation sees the state of the sequenced log: no false continuity flag, no old rev replayed", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const first = await push(host, 5);
    await sequencedThrough(host.hostname, Math.max(...first));
    const second = await push(host, 10);
    // flushed to the Sequencer without running the watchdog (which would write state at once)
    await sequencedThrough(host.hostname, Math.max(...second));
    // the account state of `second` is acknowledged but, billed rows being what they are, not
    // yet written: the abort loses it
    await abortAllDurableObjects();
    // a hostile or confused host sends an old commit again under a new seq...
    const replayed = await repeat(host, second[2] as number);
    // ...and the account carries on
    const third = await push(host, 3);
    await recoverThrough(host, Math.max(replayed, ...third));

    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(18);
    const revs = commits.map(([, rev]) => rev);
    expect(new Set(revs).size).toBe(18);
    expect([...revs].sort()).toEqual(revs);
    const report = await ingester(host.hostname).getHost(host.hostname);
    expect(report?.counters.flagged ?? 0).toBe(0);
    expect(report?.counters.dropped.RevNotIncreasing).toBe(1);
  });

  it("after an abort that follows a report, the cursor and account state come back from the delta row together", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const first = await push(host, 6);
    await sequencedThrough(host.hostname, Math.max(...first));
    // the report: one delta row holds the account state and the host's cursor
    await ingester(host.hostname).publishState();
    const reported = (await ingester(host.hostname).getHost(host.hostname))!.cursor;
    expect(reported).toBe(Math.max(...first));
    await abortAllDurableObjects();
    // the restarted object reads the cursor from the delta, not the older host row
    expect((await ingester(host.hostname).getHost(host.hostname))!.cursor).toBe(reported);
    const replayed = await repeat(host, first[3] as number);
    const more = await push(host, 2);
    await recoverThrough(host, Math.max(replayed, ...more));
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(8);
    const report = await ingester(host.hostname).getHost(host.hostname);
    expect(report?.counters.flagged ?? 0).toBe(0);
    expect(report?.counters.dropped.RevNotIncreasing).toBe(1);
  });

  it("three requestCrawls at once open one upstream socket, and a ban closes it", async () => {
    const host = await newHost();
    const answers = await Promise.all([0, 1, 2].map(() => crawl(host.hostname)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await until(
      "the upstream to see its subscriber",
      () => upstreamState(host),
      (s) => s.subscribers >= 1,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await upstreamState(host)).subscribers).toBe(1);
    await ingester(host.hostname).ban(host.hostname);
    await until(
      "the upstream to see no subscriber",
      () => upstreamState(host),
      (s) => s.subscribers === 0,
    );
  });

  it("a host pinned to its own object keeps its accounts' state: an old rev sent after the move is still dropped", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const before = await push(host, 6);
    await sequencedThrough(host.hostname, Math.max(...before));
    const pin = await SELF.fetch(`${RELAY}/admin/hosts/pin`, {
      method: "POST",
      headers: { Authorization: "Bearer test-admin-token", "Content-Type": "application/json" },
      body: JSON.stringify({ hostname: host.hostname, pinned: true }),
    });
    expect(pin.status).toBe(200);
    const pinned = hostIngesterStub(
      env,
      ingesterObjectName(host.hostname, true, readConfig(env).ingestShards),
    );
    const replayed = await repeat(host, before[1] as number);
    const after = await push(host, 3);
    const last = Math.max(replayed, ...after);
    await until(
      "the pinned object to sequence the host",
      async () => {
        await pinned.flush();
        return sequencerStub(env).getHostCursor(host.hostname);
      },
      (cursor) => (cursor ?? 0) >= last,
    );
    const revs = (await relayedCommits(host.did)).map(([, rev]) => rev);
    expect(revs.length).toBe(9);
    expect(new Set(revs).size).toBe(9);
    const report = await pinned.getHost(host.hostname);
    expect(report?.counters.dropped.RevNotIncreasing).toBe(1);
    expect(report?.counters.flagged ?? 0).toBe(0);
  });

  it("a host moved back to its shard validates with the state it left the other object with, not the shard's stale row", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const pin = (pinned: boolean) =>
      SELF.fetch(`${RELAY}/admin/hosts/pin`, {
        method: "POST",
        headers: { Authorization: "Bearer test-admin-token", "Content-Type": "application/json" },
        body: JSON.stringify({ hostname: host.hostname, pinned }),
      });
    const objectOf = (pinned: boolean) =>
      hostIngesterStub(
        env,
        ingesterObjectName(host.hostname, pinned, readConfig(env).ingestShards),
      );
    const through = async (pinned: boolean, upstreamSeq: number) =>
      until(
        `sequenced through ${upstreamSeq}`,
        async () => {
          await objectOf(pinned).flush();
          return sequencerStub(env).getHostCursor(host.hostname);
        },
        (cursor) => (cursor ?? 0) >= upstreamSeq,
      );
    await through(false, Math.max(...(await push(host, 4))));
    // written in the shard, then the host moves away and on
    await objectOf(false).publishState();
    expect((await pin(true)).status).toBe(200);
    await through(true, Math.max(...(await push(host, 4))));
    expect((await pin(false)).status).toBe(200);
    await through(false, Math.max(...(await push(host, 2))));
    const report = await objectOf(false).getHost(host.hostname);
    expect(report?.counters.flagged ?? 0).toBe(0);
    expect((await relayedCommits(host.did)).length).toBe(10);
  });

  it("connection failures spread over a host's life do not add up to offline: good events reset the count", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    let last = 0;
    // more drops than HOST_MAX_FAILURES (8), each followed by a reconnect and a good event
    for (let i = 0; i < 10; i++) {
      await until(
        "the relay to be subscribed",
        async () => {
          await runDurableObjectAlarm(ingester(host.hostname));
          return upstreamState(host);
        },
        (s) => s.subscribers === 1,
      );
      last = Math.max(...(await push(host, 1)));
      await sequencedThrough(host.hostname, last);
      await dropConnections(host);
    }
    const report = await ingester(host.hostname).getHost(host.hostname);
    expect(report?.status).not.toBe("offline");
    expect((await relayedCommits(host.did)).length).toBe(10);
  });

  it("a new account's first commit after its #account event is no continuity mismatch", async () => {
    // found by the fault suite (after-crawl, seed 9000): an account first met through #account
    // has no rev yet, and its first commit says `since: null`
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await until(
      "the relay to subscribe",
      () => upstreamState(host),
      (s) => s.subscribers === 1,
    );
    await pushAccount(host);
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 2))));
    const report = await ingester(host.hostname).getHost(host.hostname);
    expect(report?.counters.flagged ?? 0).toBe(0);
  });
});
