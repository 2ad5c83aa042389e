import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { expireSegments } from "../../src/sequence/seal";
import { sequencerStub } from "../../src/stubs";
import { appendEvents, connect, expectContiguous, logHead, RELAY, seqs } from "./support";

// Storage is isolated per test file, and tests in this file share it: each test reads the head
// first and reasons from there.

describe("subscribeRepos cursor rules", () => {
  it.each(["abc", "-1", "1.5", "99999999999999999999"])(
    "cursor=%s is InvalidRequest (400) before any upgrade",
    async (cursor) => {
      const res = await SELF.fetch(
        `${RELAY}/xrpc/com.atproto.sync.subscribeRepos?cursor=${cursor}`,
        {
          headers: { Upgrade: "websocket" },
        },
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "InvalidRequest" });
    },
  );

  it("cursor=0 replays everything from the oldest event, then goes live", async () => {
    await appendEvents(20);
    const h = await logHead();
    const consumer = await connect(0);
    await consumer.waitFor((r) => r.length >= h);
    await appendEvents(5);
    await consumer.waitFor((r) => r.length >= h + 5);
    expectContiguous(seqs(consumer.received), 1, h + 5);
    consumer.ws.close();
  });

  it("cursor = current seq sends nothing old, then every new event", async () => {
    await appendEvents(3);
    const h = await logHead();
    const consumer = await connect(h);
    await new Promise((r) => setTimeout(r, 200));
    expect(consumer.received.length).toBe(0);
    await appendEvents(4);
    await consumer.waitFor((r) => r.length >= 4);
    expectContiguous(seqs(consumer.received), h + 1, h + 4);
    consumer.ws.close();
  });

  it("no cursor means live only", async () => {
    await appendEvents(3);
    const h = await logHead();
    const consumer = await connect();
    await appendEvents(2);
    await consumer.waitFor((r) => r.length >= 2);
    expectContiguous(seqs(consumer.received), h + 1, h + 2);
    consumer.ws.close();
  });

  it("cursor = current + 1 gets a FutureCursor error frame and close 1008", async () => {
    const consumer = await connect((await logHead()) + 1);
    const closed = await consumer.closed;
    expect(closed).toEqual({ code: 1008, reason: "FutureCursor" });
    expect(consumer.received.map((r) => r.frame)).toEqual([
      { kind: "error", body: { error: "FutureCursor", message: expect.any(String) } },
    ]);
  });

  it("replays from inside a sealed segment and from a segment boundary", async () => {
    // segments are made of whole hot-log rows (one per batch): append in several batches
    for (let i = 0; i < 8; i++) await appendEvents(50);
    await sequencerStub(env).sealNow();
    const segments = await runInDurableObject(sequencerStub(env), (_i, state) =>
      state.storage.sql
        .exec<{ first_seq: number; last_seq: number }>(
          "SELECT first_seq, last_seq FROM segments ORDER BY first_seq",
        )
        .toArray(),
    );
    expect(segments.length).toBeGreaterThanOrEqual(3);
    const h = await logHead();
    const inside = segments[1]!.first_seq + 7;
    const boundary = segments[1]!.last_seq; // the next event is the first of the next segment
    for (const cursor of [inside, boundary]) {
      const consumer = await connect(cursor);
      await consumer.waitFor((r) => r.length >= h - cursor);
      expectContiguous(seqs(consumer.received), cursor + 1, h);
      consumer.ws.close();
    }
  });

  it("a consumer replaying from an old cursor while events keep arriving gets every seq once, in order", async () => {
    const start = await logHead();
    const consumer = await connect(1);
    for (let i = 0; i < 15; i++) await appendEvents(20);
    const end = await logHead();
    await consumer.waitFor((r) => (r.at(-1)?.seq ?? 0) >= end, 30_000);
    expectContiguous(seqs(consumer.received), 2, end);
    expect(end - start).toBe(300);
    consumer.ws.close();
  });

  it("a cursor older than the replay window gets #info OutdatedCursor, then the oldest retained event", async () => {
    await appendEvents(50);
    await sequencerStub(env).sealNow();
    // retention: expire every sealed segment (as if the window had passed)
    await runInDurableObject(sequencerStub(env), (_i, state) =>
      expireSegments(state.storage, env.EVENT_LOG, Date.now() + 1),
    );
    const state = await sequencerStub(env).getLogState();
    expect(state.trimmedThrough).toBeGreaterThan(0);
    await appendEvents(3);
    const h = await logHead();
    const consumer = await connect(1);
    await consumer.waitFor((r) => r.length >= 1 + (h - state.trimmedThrough));
    expect(consumer.received[0]!.frame).toMatchObject({
      kind: "info",
      body: { name: "OutdatedCursor" },
    });
    expectContiguous(seqs(consumer.received), state.trimmedThrough + 1, h);
    consumer.ws.close();
  });
});
