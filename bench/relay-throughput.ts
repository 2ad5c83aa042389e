import { emit, liveConsumer, startLive, waitUntil, workerdRssKb } from "./live-harness";
import { reportFigure } from "./report";

// Events/s through the whole relay (validation included) at three input sizes, so a reader sees
// whether the cost per event stays flat, with the relay's peak resident memory.
export default async function main(): Promise<void> {
  for (const [hosts, perHost] of [
    [4, 250],
    [4, 750],
    [8, 750],
  ] as const) {
    const setup = await startLive(hosts, perHost);
    try {
      const sentAt = new Map<string, number>();
      const consumer = liveConsumer(
        `${setup.relay.wsUrl}/xrpc/com.atproto.sync.subscribeRepos`,
        sentAt,
      );
      await consumer.ready;
      const total = hosts * perHost;
      let peakKb = await workerdRssKb();
      const sampler = setInterval(() => {
        void workerdRssKb().then((kb) => {
          peakKb = Math.max(peakKb, kb);
        });
      }, 250);
      const start = performance.now();
      await emit(setup, 0, sentAt);
      const done = await waitUntil(() => consumer.received >= total, 180_000);
      const seconds = (performance.now() - start) / 1000;
      clearInterval(sampler);
      consumer.close();
      reportFigure(
        `relay throughput (${hosts} hosts, ${total.toLocaleString("en-US")} signed commits)`,
        consumer.received / seconds,
        "events/s",
        `${done ? "all delivered" : `only ${consumer.received} delivered`}; peak workerd RSS ${(peakKb / 1024).toFixed(0)} MB; target 10,000`,
      );
    } finally {
      await setup.close();
    }
  }
}
