import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Delivery, DeliveryQueues } from "../../src/fanout/delivery-queues";
import {
  REDELIVERY_FIRST_DELAY_MS,
  REDELIVERY_MAX_DELAY_MS,
  redeliveryDelayMs,
} from "../../src/fanout/redelivery";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import {
  appendEvents,
  connectToFanout,
  expectContiguous,
  logHead,
  positionAll,
  seqs,
  waitForDelivery,
} from "./support";

// A live consumer whose Fanout lost a delivery gets it within seconds even when no later batch
// comes to reveal the gap, not at the Fanout's watchdog (30-60 s). docs/behaviours.md, Consumers.
//
// Redelivery: a delivery that fails (on its session and on the retry on a fresh one) is sent
// again after a backoff, merged with what was queued since (fanout/redelivery.ts). The tests play
// the Sequencer with its own sender (DeliveryQueues, over the same calls) to a real Fanout whose
// consumers registered it under another name (so the Sequencer feeds that empty object, not this
// one), and make the Fanout unreachable, as a restart or a broken network path does: every call
// fails while it is.
//
// Sequencer restart: deliveries queued in its memory die with it; its new instance tells each
// registered Fanout its head (Fanout.deliveriesLost), and the Fanout reads what it missed.
//
// Relay loss notice: a relayed delivery gets no answer; when the relay reports it may be lost,
// the sender tells the Fanout (DeliveryQueues.relayLost), and tries again while that fails.
// The whole path, with a real ingester, is in relay-lost-delivery.test.ts.

/** The log after `afterSeq`, as the Sequencer would deliver it (one hot read). */
async function deliveryAfter(afterSeq: number): Promise<Delivery> {
  const read = await sequencerStub(env).readLog(afterSeq, 1024 * 1024);
  if (read.kind !== "hot") throw new Error(`expected the hot log, got ${read.kind}`);
  return {
    records: read.records,
    firstSeq: afterSeq + 1,
    lastSeq: read.lastSeq,
    anchors: read.anchors,
  };
}

/** A sender to the Fanout `name` that fails every call while `reachable` is false. */
function sender(name: string) {
  const fanout = fanoutStub(env, name);
  const state = { reachable: true, failed: 0, delivered: 0 };
  const reach = <T>(call: () => Promise<T>): Promise<T> => {
    if (!state.reachable) {
      state.failed++;
      return Promise.reject(new Error("Fanout unreachable (test)"));
    }
    state.delivered++;
    return call();
  };
  const queues = new DeliveryQueues(
    {
      open: () => fanout.openDeliverySession(),
      onSession: (session, delivery) => reach(() => session.deliver(delivery)),
      direct: (_name, delivery) => reach(() => fanout.deliver(delivery)),
    },
    25,
    () => {},
  );
  return { queues, state };
}

describe("Fanout redelivery", () => {
  it("a delivery that fails twice reaches the live consumer at the next try, with nothing after it", async () => {
    const name = "fanout-redelivery-once";
    const consumer = await connectToFanout(`${name}-alias`, undefined, fanoutStub(env, name));
    const { queues, state } = sender(name);
    const h = await logHead();
    await appendEvents(2);
    const delivery = await deliveryAfter(h);

    // the delivery and its retry on a fresh session both fail; then the Fanout is back
    state.reachable = false;
    const pushedMs = Date.now();
    queues.push([name], delivery);
    while (state.failed < 2) await new Promise((r) => setTimeout(r, 5));
    state.reachable = true;

    // a quiet relay: nothing else is pushed; the redelivery alone brings the events
    await consumer.waitFor((r) => r.length >= 2, REDELIVERY_FIRST_DELAY_MS + 2_500);
    const tookMs = Date.now() - pushedMs;
    expect(tookMs).toBeGreaterThanOrEqual(REDELIVERY_FIRST_DELAY_MS - 50);
    expect(tookMs).toBeLessThan(REDELIVERY_FIRST_DELAY_MS + 2_500);
    await new Promise((r) => setTimeout(r, 300));
    expectContiguous(seqs(consumer.received), h + 1, h + 2);
    expect(state).toMatchObject({ failed: 2, delivered: 1 });
    expect((await fanoutStub(env, name).stats()).logReads).toBe(0);
    consumer.ws.close();
  });

  it("while the Fanout stays unreachable, later batches merge behind the failed one, and all arrive once, in order", async () => {
    const name = "fanout-redelivery-long";
    const consumer = await connectToFanout(`${name}-alias`, undefined, fanoutStub(env, name));
    const { queues, state } = sender(name);
    const h = await logHead();

    state.reachable = false;
    await appendEvents(2);
    queues.push([name], await deliveryAfter(h));
    // two failed tries (four calls: each try is a call and its retry), a batch pushed between
    while (state.failed < 2) await new Promise((r) => setTimeout(r, 5));
    await appendEvents(3);
    queues.push([name], await deliveryAfter(h + 2));
    while (state.failed < 4) await new Promise((r) => setTimeout(r, 5));
    const backMs = Date.now();
    state.reachable = true;

    // the next try comes at most the third backoff after the Fanout is back
    const bound = redeliveryDelayMs(2) + 2_500;
    await consumer.waitFor((r) => r.length >= 5, bound);
    expect(Date.now() - backMs).toBeLessThan(bound);
    expect(bound).toBeLessThan(REDELIVERY_MAX_DELAY_MS + 2_500);
    await new Promise((r) => setTimeout(r, 300));
    expectContiguous(seqs(consumer.received), h + 1, h + 5);
    // one delivery carried both batches, and the Fanout read nothing back from storage
    expect(state).toMatchObject({ failed: 4, delivered: 1 });
    expect((await fanoutStub(env, name).stats()).logReads).toBe(0);
    consumer.ws.close();
  });
});

describe("Sequencer restart", () => {
  it("what the previous instance had queued is caught up at the new instance's start, with nothing after it", async () => {
    const name = "fanout-restart-notice";
    const fanout = fanoutStub(env, name);
    const consumers = [await connectToFanout(name), await connectToFanout(name)];
    const h = await logHead();
    // Lose a delivery for real, as the watchdog test does: the consumers are held past h + 2
    // while h+1..h+2 are delivered (so nothing is sent), then put back at h, live. This is
    // where a delivery queued in a Sequencer that restarts leaves them.
    await positionAll(name, h + 2);
    await appendEvents(2);
    await waitForDelivery(name, h + 2);
    await positionAll(name, h);
    const before = await fanout.stats();

    await runInDurableObject(sequencerStub(env), (_instance, state) => {
      state.abort("restarted by the test");
    }).catch(() => {});
    const restartedMs = Date.now();
    await logHead(); // the new instance starts

    for (const c of consumers) {
      await c.waitFor((r) => r.length >= 2, 3_000);
      expect(Date.now() - restartedMs).toBeLessThan(3_000);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const c of consumers) expectContiguous(seqs(c.received), h + 1, h + 2);
    // one read of the gap for the Fanout (the gap, then "caught up"), not one per consumer
    const after = await fanout.stats();
    expect(after.logReads - before.logReads).toBe(2);
    expect(after.live).toBe(2);
    for (const c of consumers) c.ws.close();
  });
});

describe("relay loss notice", () => {
  it("a notice of a relayed delivery lost that fails is tried again, and the consumer gets the delivery then, with nothing after it", async () => {
    const name = "fanout-loss-notice-retry";
    const consumer = await connectToFanout(`${name}-alias`, undefined, fanoutStub(env, name));
    const fanout = fanoutStub(env, name);
    // A sender whose relay takes every delivery and passes none on (an ingester that died with
    // them), and whose notices fail while the Fanout is unreachable.
    const state = { reachable: false, failed: 0, told: 0 };
    const queues = new DeliveryQueues(
      {
        open: () => fanout.openDeliverySession(),
        onSession: (session, delivery) => session.deliver(delivery),
        direct: (_name, delivery) => fanout.deliver(delivery),
        relay: () => true,
        lost: (_name, throughSeq) => {
          if (!state.reachable) {
            state.failed++;
            return Promise.reject(new Error("Fanout unreachable (test)"));
          }
          state.told++;
          return fanout.deliveriesLost(throughSeq);
        },
      },
      25,
      () => {},
    );
    const h = await logHead();
    await appendEvents(2);
    queues.push([name], await deliveryAfter(h));
    await new Promise((r) => setTimeout(r, 50));
    expect(consumer.received).toHaveLength(0);

    // the relay reports the loss; the first notice fails, the Fanout is back right after
    const lostMs = Date.now();
    queues.relayLost(name);
    while (state.failed < 1) await new Promise((r) => setTimeout(r, 5));
    state.reachable = true;

    await consumer.waitFor((r) => r.length >= 2, REDELIVERY_FIRST_DELAY_MS + 2_500);
    expect(Date.now() - lostMs).toBeGreaterThanOrEqual(REDELIVERY_FIRST_DELAY_MS - 50);
    await new Promise((r) => setTimeout(r, 300));
    expectContiguous(seqs(consumer.received), h + 1, h + 2);
    expect(state).toMatchObject({ failed: 1, told: 1 });
    // the gap and "caught up": one read for the Fanout
    expect((await fanout.stats()).logReads).toBe(2);
    consumer.ws.close();
  });
});
