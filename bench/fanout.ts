import {
  emit,
  type LiveConsumer,
  liveConsumer,
  percentile,
  startLive,
  waitUntil,
} from "./live-harness";
import { reportFigure } from "./report";

// 1, 10 and 100 live consumers at a fixed input rate: delivered events/s in total and p99
// latency per consumer count (cost per delivered event should stay flat).
export default async function main(): Promise<void> {
  for (const consumers of [1, 10, 100]) {
    const setup = await startLive(2, 400);
    try {
      const sentAt = new Map<string, number>();
      const list: LiveConsumer[] = [];
      for (let i = 0; i < consumers; i++)
        list.push(
          liveConsumer(`${setup.relay.wsUrl}/xrpc/com.atproto.sync.subscribeRepos`, sentAt),
        );
      await Promise.all(list.map((c) => c.ready));
      const start = performance.now();
      const total = await emit(setup, 200, sentAt);
      await waitUntil(() => list.every((c) => c.received >= total), 120_000);
      const seconds = (performance.now() - start) / 1000;
      const delivered = list.reduce((n, c) => n + c.received, 0);
      const p99 = percentile(
        list.flatMap((c) => c.latenciesMs),
        99,
      );
      reportFigure(
        `fanout to ${consumers} consumer(s) at 200 events/s in`,
        delivered / seconds,
        "events/s delivered",
        `p99 latency ${p99.toFixed(0)} ms`,
      );
      for (const c of list) c.close();
    } finally {
      await setup.close();
    }
  }
}
