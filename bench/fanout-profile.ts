import { openInspector } from "./inspector";
import { emit, type LiveConsumer, liveConsumer, startLive, waitUntil } from "./live-harness";
import { reportFigure } from "./report";
import { runtimeWorkerPort } from "./workerd-cpu";

// Which part of a Fanout's cost per message is the relay's own code: V8's sampling profiler
// (through wrangler's inspector) over the same live run as fanout-cost with 40 consumers, and
// the time inside Fanout#deliverToAll split into ws.send (the runtime's call) and the rest (our
// JS: attachments, record decoding, the budget). Native work that follows a send (framing,
// syscalls) does not show in a JS profile; fanout-cost and ws-floor count it.

type ProfileNode = { id: number; callFrame: { functionName: string }; children?: number[] };
type Profile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

const CONSUMERS = 40;

export default async function main(): Promise<void> {
  const setup = await startLive(2, 500);
  const consumers: LiveConsumer[] = [];
  try {
    const port = await runtimeWorkerPort(setup.relay.pid, setup.relay.port, "/xrpc/_health");
    const sentAt = new Map<string, number>();
    for (let i = 0; i < CONSUMERS; i++)
      consumers.push(
        liveConsumer(`ws://127.0.0.1:${port}/xrpc/com.atproto.sync.subscribeRepos`, sentAt),
      );
    await Promise.all(consumers.map((c) => c.ready));
    const inspector = await openInspector(setup.relay.pid);
    await inspector.call("Profiler.enable");
    await inspector.call("Profiler.setSamplingInterval", { interval: 100 });
    await inspector.call("Profiler.start");
    const emitted = await emit(setup, 250, sentAt);
    await waitUntil(() => consumers.every((c) => c.received >= emitted), 120_000);
    const { profile } = await inspector.call<{ profile: Profile }>("Profiler.stop");
    inspector.close();

    const selfUs = new Map<number, number>();
    for (const [i, node] of profile.samples.entries())
      selfUs.set(node, (selfUs.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0));
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const inclusive = (n: ProfileNode): number =>
      (selfUs.get(n.id) ?? 0) +
      (n.children ?? []).reduce((t, c) => t + inclusive(nodes.get(c) as ProfileNode), 0);
    let delivery = 0;
    let send = 0;
    for (const n of profile.nodes) {
      if (n.callFrame.functionName === "#deliverToAll") delivery += inclusive(n);
      if (n.callFrame.functionName === "send") send += selfUs.get(n.id) ?? 0;
    }
    const messages = consumers.reduce((n, c) => n + c.received, 0);
    reportFigure(
      `fanout JS per delivered message, ours (${CONSUMERS} consumers)`,
      (delivery - send) / messages,
      "µs",
      `#deliverToAll ${(delivery / messages).toFixed(2)} µs, of which ws.send ${(send / messages).toFixed(2)} µs; ${messages} messages`,
    );
  } finally {
    for (const c of consumers) c.close();
    await setup.close();
  }
}
