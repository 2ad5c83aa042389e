import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { AppendClient, MAX_APPEND_MESSAGE_BYTES } from "../../src/sequence/append-client";
import { APPEND_SOCKET_TAG } from "../../src/sequence/append-socket";
import type { IngestEvent } from "../../src/sequence/hot-log";
import { sequencerStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, relayedCommits, sequencedThrough } from "./ingest-support";
import { commitFrame, ingestEvents } from "./support";

// An ingester's append socket (src/sequence/append-client.ts, append-socket.ts): one WebSocket
// to the Sequencer, accepted with the hibernation API, one message per batch. A socket that
// breaks (the Sequencer restarted, the socket closed with a batch in flight, an answer that
// never comes) costs a new socket or a plain call, and no event is lost or duplicated.

/** Restarts the Sequencer, as an eviction or a deploy would: its sockets close. */
async function restartSequencer(): Promise<void> {
  await runInDurableObject(sequencerStub(env), (_instance, state) => {
    state.abort("restarted by the test");
  }).catch(() => {});
}

/** Closes every append socket from the Sequencer's side. */
async function closeAppendSockets(): Promise<number> {
  return runInDurableObject(sequencerStub(env), (_instance, state) => {
    const sockets = state.getWebSockets(APPEND_SOCKET_TAG);
    for (const ws of sockets) ws.close(1011, "closed by the test");
    return sockets.length;
  });
}

async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 10));
}

/** `count` events of one account (`did`), so the log can be checked for exactly these. */
function accountEvents(count: number, host: string, did: string, size = 300): IngestEvent[] {
  return ingestEvents(count, host, size).map((e) => ({
    ...e,
    did,
    frame: commitFrame(e.upstreamSeq, did, size),
  }));
}

/** The relay seqs of `did`'s commits: exactly `count` of them, each stored once, in order. */
async function expectStoredOnce(did: string, count: number): Promise<void> {
  const seqs = (await relayedCommits(did)).map(([seq]) => seq);
  expect(seqs.length).toBe(count);
  expect(new Set(seqs).size).toBe(count);
  expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
}

describe("append socket", () => {
  it("carries batches as messages: one billed request (the upgrade) for all of them", async () => {
    const client = new AppendClient(env);
    const did = "did:plc:socketbatches00000000000";
    resetMeter();
    const batches = 12;
    for (let i = 0; i < batches; i++) {
      const result = await client.append({ events: accountEvents(5, "batches.socket.test", did) });
      expect(result.accepted).toBe(5);
    }
    await settled();
    const units = meterSnapshot();
    expect(client.socketsOpened).toBe(1);
    expect(client.plainCalls).toBe(0);
    expect(units.calls["Sequencer.fetch"]).toBe(1);
    expect(units.calls["Sequencer.appendBatch"]).toBeUndefined();
    expect(units.objects.Sequencer!.webSocketMessages).toBe(batches);
    // the answers the ingester side receives, priced 20:1 too (docs/cost.md)
    expect(units.objects.HostIngester!.outboundSocketMessages).toBe(batches);
    await expectStoredOnce(did, batches * 5);
    client.close();
  });

  it("is reopened after the Sequencer restarts; the batch after it lands once", async () => {
    const client = new AppendClient(env);
    const host = "restart.socket.test";
    const did = "did:plc:socketrestart0000000000";
    const first = await client.append({ events: accountEvents(10, host, did) });
    expect(first.accepted).toBe(10);
    await restartSequencer();
    const batch = accountEvents(10, host, did);
    const second = await client.append({ events: batch });
    expect(client.socketsOpened).toBe(2);
    expect(second.accepted).toBe(10);
    expect(second.firstSeq).toBe(first.lastSeq! + 1);
    expect(await sequencerStub(env).getHostCursor(host)).toBe(batch.at(-1)!.upstreamSeq);
    await expectStoredOnce(did, 20);
    client.close();
  });

  it("loses and duplicates nothing when the Sequencer restarts with batches in flight", async () => {
    const client = new AppendClient(env);
    const host = "abort.socket.test";
    const did = "did:plc:socketabort000000000000";
    let sent = 0;
    let last = 0;
    // the restart lands before, during or after the batch's commit, depending on the round
    for (let round = 0; round < 12; round++) {
      const batch = accountEvents(8, host, did);
      const appended = client.append({ events: batch });
      await new Promise((r) => setTimeout(r, round % 4));
      await restartSequencer();
      const result = await appended;
      // committed by the first attempt, then seen as duplicates; or committed by the second
      expect(result.accepted + result.duplicates).toBe(8);
      expect(result.hostCursors[host]).toBe(batch.at(-1)!.upstreamSeq);
      sent += 8;
      last = batch.at(-1)!.upstreamSeq;
    }
    expect(client.socketsOpened).toBeGreaterThan(1);
    expect(await sequencerStub(env).getHostCursor(host)).toBe(last);
    await expectStoredOnce(did, sent);
    client.close();
  });

  it("loses and duplicates nothing when its socket is closed with a batch in flight", async () => {
    const client = new AppendClient(env);
    const host = "closed.socket.test";
    const did = "did:plc:socketclosed00000000000";
    let sent = 0;
    let closedInFlight = 0;
    let answersLost = 0;
    for (let round = 0; round < 12; round++) {
      const batch = accountEvents(8, host, did);
      const appended = client.append({ events: batch });
      await new Promise((r) => setTimeout(r, round % 3));
      closedInFlight += await closeAppendSockets();
      const result = await appended;
      expect(result.accepted + result.duplicates).toBe(8);
      // committed, its answer lost with the socket, sent again: all duplicates
      if (result.duplicates > 0) answersLost++;
      sent += 8;
    }
    expect(closedInFlight).toBeGreaterThan(0);
    expect(answersLost).toBeGreaterThan(0);
    expect(client.socketsOpened).toBeGreaterThan(1);
    await expectStoredOnce(did, sent);
    client.close();
  });

  it("falls back to a plain call when no answer comes on two sockets; the batch is stored once", async () => {
    // every answer is given up on before it can arrive: socket, socket again, then appendBatch
    const client = new AppendClient(env, { replyTimeoutMs: 0 });
    const host = "fallback.socket.test";
    const did = "did:plc:socketfallback000000000";
    resetMeter();
    const batch = accountEvents(6, host, did);
    const result = await client.append({ events: batch });
    await settled();
    expect(client.socketsOpened).toBe(2);
    expect(client.plainCalls).toBe(1);
    expect(meterSnapshot().calls["Sequencer.appendBatch"]).toBe(1);
    // sent three times, stored once: the plain call found them all sequenced already, or
    // stored what the sockets had not
    expect(result.accepted + result.duplicates).toBe(6);
    expect(result.hostCursors[host]).toBe(batch.at(-1)!.upstreamSeq);
    await expectStoredOnce(did, 6);
    client.close();
  });

  it("sends a batch too big for one message as a plain call", async () => {
    const client = new AppendClient(env);
    const did = "did:plc:socketbig00000000000000";
    const size = 200_000;
    const batch = accountEvents(
      Math.ceil(MAX_APPEND_MESSAGE_BYTES / size) + 1,
      "big.socket.test",
      did,
      size,
    );
    resetMeter();
    const result = await client.append({ events: batch });
    await settled();
    expect(result.accepted).toBe(batch.length);
    expect(client.plainCalls).toBe(1);
    expect(meterSnapshot().calls["Sequencer.appendBatch"]).toBe(1);
    expect(meterSnapshot().objects.Sequencer?.webSocketMessages ?? 0).toBe(0);
    // and the next, small, goes over the socket again
    expect(
      (await client.append({ events: accountEvents(2, "big.socket.test", did) })).accepted,
    ).toBe(2);
    expect(client.plainCalls).toBe(1);
    await expectStoredOnce(did, batch.length + 2);
    client.close();
  });

  it("is closed once the ingester has sent nothing for a while, and reopened by the next batch", async () => {
    const client = new AppendClient(env, { idleCloseMs: 200 });
    await client.append({ events: ingestEvents(2, "idle.socket.test") });
    await client.append({ events: ingestEvents(2, "idle.socket.test") });
    expect(client.isOpen).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(client.isOpen).toBe(false);
    await client.append({ events: ingestEvents(2, "idle.socket.test") });
    expect(client.socketsOpened).toBe(2);
    client.close();
  });

  it("an ingester streaming through a Sequencer restart loses and duplicates nothing", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 30))));
    // a restart while batches are in flight (or just after them)
    const pending = push(host, 60);
    await new Promise((r) => setTimeout(r, 30));
    await restartSequencer();
    await sequencedThrough(host.hostname, Math.max(...(await pending)), 30_000);
    // a restart between batches: the ingester's socket is closed and the next batch reopens it
    await restartSequencer();
    resetMeter();
    await sequencedThrough(host.hostname, Math.max(...(await push(host, 30))), 30_000);
    await settled();
    expect(meterSnapshot().calls["Sequencer.fetch"]).toBe(1);
    expect(meterSnapshot().calls["Sequencer.appendBatch"]).toBeUndefined();
    expect(meterSnapshot().objects.Sequencer!.webSocketMessages).toBeGreaterThan(0);
    const commits = await relayedCommits(host.did);
    expect(commits.length).toBe(120);
    expect(new Set(commits.map(([, rev]) => rev)).size).toBe(120);
    await ingester(host.hostname).publishState();
  });
});
