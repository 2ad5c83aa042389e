import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config";
import { ReplaySlots } from "../../src/fanout/replay-slots";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import { appendEvents, type Consumer, connectToFanout, expectContiguous, seqs } from "./support";

// A Fanout replays only FANOUT_MAX_CONCURRENT_REPLAYS consumers from storage at once (each
// holds up to a ~1 MB read and pushes the log into its socket); the others wait in line and
// start, in arrival order, when a slot frees. This project's consumer budget drains at 1 MB/s,
// so replaying a few MB keeps a slot busy for seconds: long enough to see the line.

describe("replay slots", () => {
  it("hands a released slot to the oldest waiter", async () => {
    const slots = new ReplaySlots(2);
    const order: string[] = [];
    const releaseA = await slots.acquire();
    const releaseB = await slots.acquire();
    const c = slots.acquire().then((release) => {
      order.push("c");
      return release;
    });
    const d = slots.acquire().then((release) => {
      order.push("d");
      return release;
    });
    expect(slots.queued).toBe(2);
    releaseB();
    releaseB(); // a second release of the same slot frees nothing more
    (await c)();
    releaseA();
    (await d)();
    expect(order).toEqual(["c", "d"]);
    expect(slots.queued).toBe(0);
    // both slots are free again: two acquisitions resolve at once
    await slots.acquire();
    await slots.acquire();
    expect(slots.queued).toBe(0);
  });
});

describe("Fanout replay cap", () => {
  it("a consumer past the cap waits for a slot, then gets every event once, in order", async () => {
    const cap = readConfig(env).fanoutMaxConcurrentReplays;
    const name = "fanout-replay-cap";
    // ~3 MB of log: at the modelled 1 MB/s each replay holds its slot for a few seconds
    for (let i = 0; i < 4; i++) await appendEvents(500, "cap.test", 1500);
    const head = (await sequencerStub(env).getLogState()).headSeq;

    const replaying: Consumer[] = [];
    for (let i = 0; i < cap; i++) replaying.push(await connectToFanout(name, 0));
    const waiting = await connectToFanout(name, 0);
    const stats = await fanoutStub(env, name).stats();
    expect(stats).toMatchObject({ consumers: cap + 1, replaying: cap, queuedReplays: 1 });
    expect(waiting.received).toEqual([]);

    // events appended while it waits come after the replay, once
    await appendEvents(5, "cap.test", 1500);
    for (const consumer of [...replaying, waiting]) {
      await consumer.waitFor((r) => r.length >= head + 5, 40_000);
      expectContiguous(seqs(consumer.received), 1, head + 5);
      consumer.ws.close();
    }
    // a replay loop notices its socket closed at its next step: the slots are all freed soon
    const deadline = Date.now() + 5_000;
    let after = await fanoutStub(env, name).stats();
    while ((after.replaying > 0 || after.queuedReplays > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = await fanoutStub(env, name).stats();
    }
    expect(after).toMatchObject({ replaying: 0, queuedReplays: 0 });
  });
});
