import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RELAY_SOCKET_TAG } from "../../src/fanout/delivery-relay";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { APPEND_SOCKET_TAG } from "../../src/sequence/append-socket";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import {
  crawl,
  type Host,
  ingester,
  newHost,
  push,
  sequencedThrough,
  until,
} from "./ingest-support";
import { appendEvents, connectToFanout, expectContiguous, logHead, seqs } from "./support";

// A relayed delivery (fanout/delivery-relay.ts) gets no answer: when it is lost on the way, the
// Fanout learns of it at the next delivery, and on a quiet relay there is none. The Sequencer
// learns of the loss instead (the relaying ingester's append socket closed, the ingester refused
// or lost its socket to the Fanout) and tells the Fanout, which catches its live consumers up
// within seconds, not at its watchdog (30-60 s). docs/behaviours.md, Consumers.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Append sockets the Sequencer holds open (the relay is one of them). */
async function appendSockets(): Promise<number> {
  return runInDurableObject(
    sequencerStub(env),
    (_instance, state) => state.getWebSockets(APPEND_SOCKET_TAG).length,
  );
}

/** Relay sockets the Fanout `name` holds. */
async function relaySockets(name: string): Promise<number> {
  return runInDurableObject(
    fanoutStub(env, name),
    (_instance, state) => state.getWebSockets(RELAY_SOCKET_TAG).length,
  );
}

/**
 * A real ingester with a real host that has sequenced one event: its append socket is the
 * Sequencer's only one, so it relays every delivery.
 */
async function relayingHost(): Promise<Host> {
  const host = await newHost();
  expect((await crawl(host.hostname)).status).toBe(200);
  await sequencedThrough(host.hostname, Math.max(...(await push(host, 1))));
  expect(await appendSockets()).toBe(1);
  return host;
}

describe("relayed delivery lost", () => {
  it("an ingester aborted with a relayed delivery in flight: the live consumer gets it within seconds, with nothing after it", async () => {
    const host = await relayingHost();

    const name = "relay-lost-ingester-abort";
    const fanout = fanoutStub(env, name);
    const consumer = await connectToFanout(name);
    const h = await logHead();

    // The Fanout is busy for a while (its input gate closed), so the ingester's relay socket to
    // it, opened by the first delivery, is still opening when the ingester is aborted: the
    // delivery dies with the ingester, after the Sequencer handed it over.
    const busyMs = 1_000;
    const busy = runInDurableObject(fanout, (_instance, state) =>
      state.blockConcurrencyWhile(() => sleep(busyMs)),
    );
    await sleep(50);
    resetMeter();
    const busySince = Date.now();
    await appendEvents(2);
    await sleep(200);
    await runInDurableObject(ingester(host.hostname), (_instance, state) => {
      state.abort("restarted by the test");
    }).catch(() => {});
    await until("the ingester's append socket to close", appendSockets, (n) => n === 0, 5_000);
    // handed to the relay, not delivered by RPC
    const calls = meterSnapshot().calls;
    expect(calls["Fanout.deliver"]).toBeUndefined();
    expect(calls["Fanout.session.deliver"]).toBeUndefined();

    await busy;
    // a quiet relay: nothing else is appended
    await consumer.waitFor((r) => r.length >= 2, busyMs + 4_000);
    expect(Date.now() - busySince).toBeLessThan(busyMs + 4_000);
    await sleep(300);
    expectContiguous(seqs(consumer.received), h + 1, h + 2);
    // one read of the gap for the Fanout (the gap, then "caught up")
    expect((await fanout.stats()).logReads).toBe(2);
    consumer.ws.close();
  });

  it("an ingester's socket to the Fanout that breaks is reported: the Fanout is told once, and the consumer gets every event once", async () => {
    const host = await relayingHost();

    const name = "relay-lost-socket-broken";
    const fanout = fanoutStub(env, name);
    const consumer = await connectToFanout(name);
    // the first relayed delivery opens the ingester's socket to the Fanout
    const first = (await appendEvents(1)).lastSeq as number;
    await consumer.waitFor((r) => r.length >= 1);
    expect(await relaySockets(name)).toBe(1);

    // The ingester is busy (its input gate closed) while a delivery reaches it and the Fanout's
    // end of their socket closes: when it is free again it passes the delivery on, then learns
    // that the socket is gone and reports it. (The delivery still arrives here: the Fanout
    // receives on a socket it is closing. A path that breaks loses it; that loss is what the
    // report is for.)
    const busyMs = 1_000;
    const busy = runInDurableObject(ingester(host.hostname), (_instance, state) =>
      state.blockConcurrencyWhile(() => sleep(busyMs)),
    );
    await sleep(50);
    resetMeter();
    await appendEvents(2);
    await sleep(100);
    await runInDurableObject(fanout, (_instance, state) => {
      for (const ws of state.getWebSockets(RELAY_SOCKET_TAG)) ws.close(1011, "broken by the test");
    });
    await busy;

    await consumer.waitFor((r) => r.length >= 3, busyMs + 4_000);
    await until(
      "the Fanout to be told",
      async () => meterSnapshot().calls["Fanout.deliveriesLost"] ?? 0,
      (n) => n > 0,
      3_000,
    );
    await sleep(300);
    const calls = meterSnapshot().calls;
    expect(calls["Fanout.deliver"]).toBeUndefined();
    expect(calls["Fanout.session.deliver"]).toBeUndefined();
    expect(calls["Fanout.deliveriesLost"]).toBe(1);
    expectContiguous(seqs(consumer.received), first, first + 2);
    // nothing, or the seqs the notice may have overtaken, read once for the Fanout
    expect((await fanout.stats()).logReads).toBeLessThanOrEqual(2);
    consumer.ws.close();
  });
});
