import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RELAY_CHECK_MS } from "../../src/fanout/delivery-queues";
import { RELAY_SOCKET_TAG } from "../../src/fanout/delivery-relay";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { AppendClient } from "../../src/sequence/append-client";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import { connectToFanout, ingestEvents } from "./support";

// Fanout deliveries relayed by an ingester (src/fanout/delivery-relay.ts): the Sequencer sends
// each delivery on an ingester's append socket, the ingester passes it on over a socket of its
// own to the Fanout. Neither the Sequencer nor the Fanout holds a request open for it, and each
// hop is a WebSocket message. A relay that breaks is a lost delivery the Fanout reads back.

async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

/** Seqs a consumer received, checked to be exactly `from..to`, each once, in order. */
function expectExactly(received: { seq: number | null }[], from: number, to: number): void {
  const seqs = received.map((r) => r.seq);
  expect(seqs).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

describe("delivery relay", () => {
  it("relays deliveries at every rate: messages, no session and no request per delivery; a broken relay loses and duplicates nothing", async () => {
    const fanout = "relay-rate";
    const host = "relay-rate.test";
    const relay = new AppendClient(env);
    // the ingester's socket is open before the consumer, so the Sequencer can relay at once
    await relay.append({ events: ingestEvents(1, host, 200) });
    const consumer = await connectToFanout(fanout);
    // a second Fanout, fed the same way, whose consumer leaves (the end of this test)
    const quiet = "relay-quiet";
    const leaving = await connectToFanout(quiet);
    // the relay sockets to both Fanouts are opened by their first delivery (one request each)
    const first = (await relay.append({ events: ingestEvents(1, host, 200) })).lastSeq!;
    await consumer.waitFor((r) => r.at(-1)?.seq === first);
    await leaving.waitFor((r) => r.at(-1)?.seq === first);
    await settled();

    // a batch every ~50 ms for 2 s: deliveries over the 10/s at which a session would pay for
    // itself still go through the relay (a session would hold a request open on each Fanout:
    // billed duration all the time)
    resetMeter();
    const relayedBefore = relay.relayed;
    const messagesBefore = relay.relayMessages;
    let last = first;
    const started = Date.now();
    while (Date.now() - started < 2_000) {
      last = (await relay.append({ events: ingestEvents(2, host, 200) })).lastSeq!;
      await new Promise((r) => setTimeout(r, 40));
    }
    await consumer.waitFor((r) => r.at(-1)?.seq === last);
    const seconds = (Date.now() - started) / 1000;
    await settled();
    const units = meterSnapshot();
    const relayed = relay.relayed - relayedBefore;
    // both Fanouts, each at a session's rate or more
    expect(relayed / 2 / seconds).toBeGreaterThanOrEqual(10);
    expect(units.calls["Fanout.openDeliverySession"]).toBeUndefined();
    expect(units.calls["Fanout.deliver"]).toBeUndefined();
    expect(units.calls["Fanout.session.deliver"]).toBeUndefined();
    expect(units.objects.Fanout!.requests).toBe(0);
    expect(units.objects.Fanout!.webSocketMessages).toBe(relayed);
    // the ingester received each batch's answer and one message per delivery round, naming
    // both Fanouts (fed the same batches at the same time): not one message per Fanout
    const batches = units.objects.Sequencer!.webSocketMessages!;
    const messages = relay.relayMessages - messagesBefore;
    expect(units.objects.HostIngester!.outboundSocketMessages).toBe(batches + messages);
    expect(messages).toBeLessThan(relayed);
    expect(messages).toBeLessThanOrEqual(Math.ceil(relayed / 2) + 2);
    expectExactly(consumer.received, first, last);

    // a relay socket is not a consumer
    const relaySockets = await runInDurableObject(
      fanoutStub(env, fanout),
      (_i, state) => state.getWebSockets(RELAY_SOCKET_TAG).length,
    );
    expect(relaySockets).toBe(1);
    expect((await fanoutStub(env, quiet).stats()).consumers).toBe(1);
    expect((await fanoutStub(env, fanout).stats()).consumers).toBe(1);
    expect(await fanoutStub(env, fanout).consumerCount()).toBe(1);
    leaving.ws.close();
    await leaving.closed;

    // the relay socket to the Fanout breaks now and then: deliveries on it are lost, the Fanout
    // reads them back at the next one, the consumer gets every seq once, in order
    let closed = 0;
    for (let round = 0; round < 10; round++) {
      last = (await relay.append({ events: ingestEvents(3, host, 200) })).lastSeq!;
      if (round % 3 === 1)
        closed += await runInDurableObject(fanoutStub(env, fanout), (_i, state) => {
          const sockets = state.getWebSockets(RELAY_SOCKET_TAG);
          for (const ws of sockets) ws.close(1011, "broken by the test");
          return sockets.length;
        });
      await new Promise((r) => setTimeout(r, 150));
    }
    await consumer.waitFor((r) => r.at(-1)?.seq === last, 60_000);
    await settled();
    expect(closed).toBeGreaterThan(0);
    expectExactly(consumer.received, first, last);

    consumer.ws.close();

    // relayed deliveries get no answer: RELAY_CHECK_MS after the last answer, the next one makes
    // the Sequencer ask the Fanout's consumer count, and a Fanout without consumers is dropped
    expect(await sequencerStub(env).listFanouts()).toContain(quiet);
    const checkBy = Date.now() + RELAY_CHECK_MS + 10_000;
    while ((await sequencerStub(env).listFanouts()).includes(quiet) && Date.now() < checkBy) {
      await relay.append({ events: ingestEvents(1, host, 200) });
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(await sequencerStub(env).listFanouts()).not.toContain(quiet);
    expect(meterSnapshot().calls["Fanout.consumerCount"]).toBeGreaterThanOrEqual(1);
    relay.close();
  }, 120_000);
});
