import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { AppendClient } from "../../src/sequence/append-client";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, relayedCommits, sequencedThrough } from "./ingest-support";
import { appendEvents, connectToFanout, ingestEvents } from "./support";

// The long-lived RPC sessions (src/rpc-session.ts): an ingester's append session to the
// Sequencer and the Sequencer's delivery session to each Fanout. A session whose callee
// restarted is broken; the next call opens another, and no event is lost or duplicated.

/** Restarts a Durable Object, as an eviction or a deploy would: every stub to it breaks. */
async function restart(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => {
    state.abort("restarted by the test");
  }).catch(() => {});
}

async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 10));
}

describe("append session", () => {
  it("is reopened after the Sequencer restarts; the batch sent on the broken session lands once", async () => {
    const client = new AppendClient(env);
    const host = "restart.sessions.test";
    const first = await client.append({ events: ingestEvents(10, host) });
    expect(first.accepted).toBe(10);
    expect(client.sessionsOpened).toBe(1);

    await restart(sequencerStub(env));
    const batch = ingestEvents(10, host);
    const second = await client.append({ events: batch });
    // the broken session threw and the batch was sent once more, on a new session
    expect(client.sessionsOpened).toBe(2);
    expect(second.accepted).toBe(10);
    expect(second.firstSeq).toBe(first.lastSeq! + 1);
    expect(await sequencerStub(env).getHostCursor(host)).toBe(batch.at(-1)!.upstreamSeq);
    client.close();
  });

  it("a batch that was stored before its session broke gets no new seq when it is sent again", async () => {
    const client = new AppendClient(env);
    const host = "committed.sessions.test";
    await client.append({ events: ingestEvents(5, host) });
    // the Sequencer stores the batch, then restarts before the ingester hears back
    const batch = ingestEvents(10, host);
    const stored = await sequencerStub(env).appendBatch({ events: batch });
    const head = (await sequencerStub(env).getLogState()).headSeq;
    await restart(sequencerStub(env));
    const resent = await client.append({ events: batch });
    expect(client.sessionsOpened).toBe(2);
    expect(resent.accepted).toBe(0);
    expect(resent.duplicates).toBe(10);
    expect(resent.hostCursors[host]).toBe(batch.at(-1)!.upstreamSeq);
    expect((await sequencerStub(env).getLogState()).headSeq).toBe(head);
    expect(stored.lastSeq).toBe(head);
    client.close();
  });

  it("below its rate threshold a batch is a plain call; a session opens when the rate rises and closes when it falls", async () => {
    const client = new AppendClient(env, {
      idleCloseMs: 60_000,
      maxAgeMs: 60_000,
      // sequential appends take up to SEQUENCER_GROUP_COMMIT_MS (100 ms) each: ~10/s at most
      openAtCallsPerSecond: 6,
      rateWindowMs: 500,
    });
    const host = "rate.sessions.test";
    // the first window counts as busy: a backlog gets its session at once
    await client.append({ events: ingestEvents(1, host) });
    expect(client.sessionsOpened).toBe(1);
    // slow: ~2 calls/s, a window later the session is closed and batches are plain calls
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 450));
      await client.append({ events: ingestEvents(1, host) });
    }
    expect(client.isOpen).toBe(false);
    await settled();
    resetMeter();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 450));
      await client.append({ events: ingestEvents(1, host) });
    }
    await settled();
    // each plain call is a billed request (the Sequencer may sleep between them)
    expect(meterSnapshot().calls["Sequencer.appendBatch"]).toBe(3);
    expect(client.isOpen).toBe(false);
    // fast: many calls in a window, and the next window opens a session again
    // (five at a time, so the rate does not depend on how fast one append is answered)
    const deadline = Date.now() + 5_000;
    while (!client.isOpen && Date.now() < deadline)
      await Promise.all(
        Array.from({ length: 5 }, () => client.append({ events: ingestEvents(1, host) })),
      );
    expect(client.isOpen).toBe(true);
    expect(client.sessionsOpened).toBe(2);
    client.close();
  });

  it("is closed once the ingester has sent nothing for a while, and reopened by the next batch", async () => {
    const client = new AppendClient(env, { idleCloseMs: 200, maxAgeMs: 60_000 });
    await client.append({ events: ingestEvents(2, "idle.sessions.test") });
    await client.append({ events: ingestEvents(2, "idle.sessions.test") });
    expect(client.isOpen).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(client.isOpen).toBe(false);
    resetMeter();
    await client.append({ events: ingestEvents(2, "idle.sessions.test") });
    await settled();
    expect(client.sessionsOpened).toBe(2);
    expect(meterSnapshot().calls["Sequencer.openAppendSession"]).toBe(1);
    client.close();
  });

  it("is renewed once older than its maximum age (one request per renewal)", async () => {
    const client = new AppendClient(env, { idleCloseMs: 60_000, maxAgeMs: 150 });
    await client.append({ events: ingestEvents(1, "age.sessions.test") });
    await client.append({ events: ingestEvents(1, "age.sessions.test") });
    expect(client.sessionsOpened).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    await client.append({ events: ingestEvents(1, "age.sessions.test") });
    expect(client.sessionsOpened).toBe(2);
    client.close();
  });

  it("an ingester streaming through a Sequencer restart loses and duplicates nothing", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 30))));
    // a restart while batches are in flight (or just after them)
    const pending = push(host, 60);
    await new Promise((r) => setTimeout(r, 30));
    await restart(sequencerStub(env));
    await sequencedThrough(host.hostname, Math.max(...(await pending)), 30_000);
    // a restart between batches: the ingester's session is broken and the next batch reopens it
    await restart(sequencerStub(env));
    resetMeter();
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 30))), 30_000);
    await settled();
    expect(meterSnapshot().calls["Sequencer.openAppendSession"]).toBe(1);
    expect(meterSnapshot().calls["Sequencer.appendBatch"]).toBeUndefined();
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(120);
    expect(new Set(commits.map(([, rev]) => rev)).size).toBe(120);
    await ingester(host.hostname).publishState();
  });
});

describe("delivery session", () => {
  it("is reopened after the Fanout restarts: its new consumers get what follows", async () => {
    const name = "restart-sessions";
    const before = await connectToFanout(name);
    await appendEvents(3, "deliveries.sessions.test", 200);
    await before.waitFor((r) => r.length >= 3);

    await restart(fanoutStub(env, name));
    await before.closed;
    const after = await connectToFanout(name);
    resetMeter();
    const appended = await appendEvents(3, "deliveries.sessions.test", 200);
    const received = await after.waitFor((r) => r.length >= 3);
    expect(received.map((r) => r.seq)).toEqual([
      appended.firstSeq,
      appended.firstSeq! + 1,
      appended.lastSeq,
    ]);
    await settled();
    expect(meterSnapshot().calls["Fanout.openDeliverySession"]).toBe(1);
    expect(meterSnapshot().calls["Fanout.session.deliver"]).toBe(1);
    after.ws.close();
  });
});
