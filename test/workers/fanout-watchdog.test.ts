import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeRecords } from "../../src/log/records";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import {
  appendEvents,
  type Consumer,
  commitFrame,
  connectToFanout,
  expectContiguous,
  logHead,
  positionAll,
  seqs,
  waitForDelivery,
} from "./support";

// The Fanout's watchdog alarm (every 30 s) must not send live consumers back to backfill: each
// backfill is a readLog request on the one Sequencer, per consumer, per alarm. A live consumer
// behind the head is normal (a delivery is in flight); only one still behind the head the
// previous alarm saw lost a delivery, and the Fanout then reads the gap once for all of them.
// Storage is isolated per test file; each test uses a Fanout of its own.

describe("Fanout watchdog", () => {
  it("keeps live consumers live, and fills a delivery lost on a quiet relay with one read for the Fanout", async () => {
    const name = "fanout-watchdog-quiet";
    const fanout = fanoutStub(env, name);
    await appendEvents(3);
    const h = await logHead();
    const consumers: Consumer[] = [await connectToFanout(name), await connectToFanout(name)];
    expect(await runDurableObjectAlarm(fanout)).toBe(true); // remembers head h

    // Lose a delivery for real: the Fanout holds the consumers past h + 2 while h+1..h+2 are
    // delivered (so it sends nothing), then back at h. Now they are live, behind the head, with
    // no delivery in flight and none coming: the relay is quiet.
    await positionAll(name, h + 2);
    await appendEvents(2);
    await waitForDelivery(name, h + 2);
    await positionAll(name, h);
    const before = await fanout.stats();

    // Behind the head, but not behind the head of the previous alarm: nothing to do yet.
    expect(await runDurableObjectAlarm(fanout)).toBe(true);
    const afterFirst = await fanout.stats();
    expect(afterFirst.logReads).toBe(before.logReads);
    expect(afterFirst.live).toBe(2);
    for (const c of consumers) expect(c.received).toEqual([]);

    // One interval later they are still behind that head: the gap is real and gets filled.
    expect(await runDurableObjectAlarm(fanout)).toBe(true);
    for (const c of consumers) await c.waitFor((r) => r.length >= 2);
    const afterSecond = await fanout.stats();
    // one read for the Fanout (the gap, then "caught up"), not one backfill per consumer
    expect(afterSecond.logReads - before.logReads).toBe(2);
    expect(afterSecond.live).toBe(2);

    // still live: the next event arrives once, in order
    await appendEvents(1);
    for (const c of consumers) {
      await c.waitFor((r) => r.length >= 3);
      expectContiguous(seqs(c.received), h + 1, h + 3);
      c.ws.close();
    }
  });

  it("a live consumer that stays current costs the Sequencer no reads at any alarm", async () => {
    const name = "fanout-watchdog-busy";
    const fanout = fanoutStub(env, name);
    const h = await logHead();
    const consumer = await connectToFanout(name);
    for (let round = 1; round <= 3; round++) {
      await appendEvents(2);
      await consumer.waitFor((r) => r.length >= 2 * round);
      expect(await runDurableObjectAlarm(fanout)).toBe(true);
    }
    const stats = await fanout.stats();
    expect(stats).toMatchObject({ consumers: 1, live: 1, logReads: 0 });
    expectContiguous(seqs(consumer.received), h + 1, h + 6);
    consumer.ws.close();
  });
});

describe("Fanout registration", () => {
  it("a delivery answered while a consumer is being accepted counts that consumer", async () => {
    // The Sequencer stops feeding a Fanout that answers a delivery with zero consumers. A
    // consumer whose upgrade is awaiting the Sequencer must count, or the Sequencer can drop
    // this Fanout right after registering it and a live-only consumer gets nothing.
    const name = "fanout-registration";
    const fanout = fanoutStub(env, name);
    await appendEvents(1);
    const h = await logHead();
    // same stub: the upgrade reaches the Fanout first and is awaiting the Sequencer when the
    // delivery runs
    const connecting = connectToFanout(name, undefined, fanout);
    // the upgrade has reached the Fanout (it may even be accepted already: then it counts too)
    for (;;) {
      const stats = await fanout.stats();
      if (stats.connecting + stats.consumers >= 1) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    // a repeat of an old seq: every consumer already has it, so it changes nothing but the count
    const { consumers } = await fanout.deliver({
      records: encodeRecords([{ seq: h, frame: commitFrame(1) }]),
      firstSeq: h,
      lastSeq: h,
      anchors: [{ firstSeq: h, firstUs: Date.now() * 1000 }],
    });
    expect(consumers).toBe(1);
    const consumer = await connecting;
    await appendEvents(2);
    await consumer.waitFor((r) => r.length >= 2);
    expectContiguous(seqs(consumer.received), h + 1, h + 2);
    consumer.ws.close();
  });
});

describe("Fanout gap", () => {
  it("a delivery the Fanout missed is read once for all its consumers when the next one reveals it", async () => {
    // The test plays the Sequencer's part for this object: its consumers register it under
    // another name, so the Sequencer feeds that (empty) object and never this one. Batches are
    // read from the real log and delivered as the Sequencer would, except one, which is lost.
    const fanout = fanoutStub(env, "fanout-gap");
    const sequencer = sequencerStub(env);
    const deliverFromLog = async (afterSeq: number) => {
      const read = await sequencer.readLog(afterSeq, 1024 * 1024);
      if (read.kind !== "hot") throw new Error(`expected the hot log, got ${read.kind}`);
      return fanout.deliver({
        records: read.records,
        firstSeq: afterSeq + 1,
        lastSeq: read.lastSeq,
        anchors: read.anchors,
      });
    };
    const h = await logHead();
    const consumers: Consumer[] = [];
    for (let i = 0; i < 3; i++)
      consumers.push(await connectToFanout("fanout-gap-alias", undefined, fanout));

    await appendEvents(1);
    await deliverFromLog(h);
    for (const c of consumers) await c.waitFor((r) => r.length >= 1);
    await appendEvents(2); // h+2..h+3: this delivery is lost
    await appendEvents(1);
    await deliverFromLog(h + 3); // h+4 reveals the gap

    for (const c of consumers) {
      await c.waitFor((r) => r.length >= 4);
      expectContiguous(seqs(c.received), h + 1, h + 4);
    }
    // the gap, then "caught up": two reads for the Fanout, not two per consumer
    expect(await fanout.stats()).toMatchObject({ live: 3, logReads: 2, replaying: 0 });
    for (const c of consumers) c.ws.close();
  });
});
