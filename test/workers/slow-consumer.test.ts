import { describe, expect, it } from "vitest";
import { appendEvents, connect } from "./support";

// workerd exposes no send-buffer signal (cloudflare/workerd#988), so the Fanout bounds each
// consumer by a modelled backlog (src/fanout/consumer-budget.ts). This project's workerd tests
// configure a 3 MB budget draining at 1 MB/s.

describe("backpressure", () => {
  it("a consumer whose backlog passes the budget gets ConsumerTooSlow and close 1008", async () => {
    const consumer = await connect();
    // 300 KB at a time until the 3 MB budget (draining at 1 MB/s) overflows: ~4.5 MB on a quiet
    // machine; a loaded one appends slower, so the burst goes on until the Fanout gives up
    let done = false;
    void consumer.closed.then(() => {
      done = true;
    });
    for (let i = 0; i < 60 && !done; i++) await appendEvents(100, "burst.test", 3000);
    const closed = await consumer.closed;
    expect(closed).toEqual({ code: 1008, reason: "ConsumerTooSlow" });
    expect(consumer.received.at(-1)?.frame).toMatchObject({
      kind: "error",
      body: { error: "ConsumerTooSlow" },
    });
  });

  it("a consumer within the budget keeps receiving everything", async () => {
    const consumer = await connect();
    for (let i = 0; i < 5; i++) {
      await appendEvents(50, "steady.test", 1500);
      await new Promise((r) => setTimeout(r, 100));
    }
    await consumer.waitFor((r) => r.length >= 250);
    expect(consumer.received.every((r) => r.frame.kind === "commit")).toBe(true);
    consumer.ws.close();
  });
});
