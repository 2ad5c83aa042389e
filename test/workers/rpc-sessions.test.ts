import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { fanoutStub } from "../../src/stubs";
import { appendEvents, connectToFanout } from "./support";

// The long-lived RPC sessions (src/rpc-session.ts): the Sequencer's delivery session to each
// Fanout (appends go over a socket: append-socket.test.ts). A session whose callee restarted is
// broken; the next call opens another, and no event is lost or duplicated.

/** Restarts a Durable Object, as an eviction or a deploy would: every stub to it breaks. */
async function restart(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => {
    state.abort("restarted by the test");
  }).catch(() => {});
}

async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 10));
}

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
