import { emit, type LiveConsumer, liveConsumer, startLive, waitUntil } from "./live-harness";
import { reportFigure } from "./report";
import { cpuSince, runtimeWorkerPort, total, type WorkerdCpu, workerdCpu } from "./workerd-cpu";

// What one more consumer costs the relay in CPU: the same live input is delivered to a few and to
// many consumers, and the CPU time of the relay's workerd processes (user + system, from /proc)
// is compared. Ingestion and sequencing are the same in both runs, so the difference divided by
// the extra messages delivered is the CPU a Fanout spends per message it sends. docs/cost.md uses
// it for how many full-firehose consumers one Fanout object can carry (scripts/cost.ts).
// Consumers connect straight to the runtime's port, past wrangler's dev proxy, which production
// does not have (FANOUT_COST_PATH=proxy goes through it; its CPU is reported apart either way,
// see workerd-cpu.ts). bench/ws-floor.ts measures the same figure for workerd alone.

const EVENTS_PER_HOST = 500;
const RATE = 250;
const FEW = 2;
const MANY = 40;
const THROUGH_PROXY = process.env.FANOUT_COST_PATH === "proxy";
// FANOUT_COST_CONSUMER=count: consumers that only count messages, as ws-floor's do, instead of
// decoding every frame (this 2-core machine's consumers compete with workerd for CPU)
const COUNT_ONLY = process.env.FANOUT_COST_CONSUMER === "count";

async function run(consumers: number): Promise<{ cpu: WorkerdCpu; delivered: number }> {
  const setup = await startLive(2, EVENTS_PER_HOST);
  try {
    const sentAt = new Map<string, number>();
    const port = THROUGH_PROXY
      ? setup.relay.port
      : await runtimeWorkerPort(setup.relay.pid, setup.relay.port, "/xrpc/_health");
    const list: LiveConsumer[] = [];
    const url = `ws://127.0.0.1:${port}/xrpc/com.atproto.sync.subscribeRepos`;
    for (let i = 0; i < consumers; i++) list.push(liveConsumer(url, COUNT_ONLY ? null : sentAt));
    await Promise.all(list.map((c) => c.ready));
    // let connection set-up finish before counting
    await new Promise((r) => setTimeout(r, 1_000));
    const before = workerdCpu(setup.relay.pid, setup.relay.port);
    const emitted = await emit(setup, RATE, sentAt);
    await waitUntil(() => list.every((c) => c.received >= emitted), 120_000);
    const cpu = cpuSince(before, workerdCpu(setup.relay.pid, setup.relay.port));
    for (const c of list) c.close();
    return { cpu, delivered: list.reduce((n, c) => n + c.received, 0) };
  } finally {
    await setup.close();
  }
}

export default async function main(): Promise<void> {
  if (process.platform !== "linux") {
    console.log("fanout-cost: needs /proc (Linux); skipped");
    return;
  }
  const few = await run(FEW);
  const many = await run(MANY);
  const extra = Math.max(1, many.delivered - few.delivered);
  const perMessage = (total(many.cpu.runtime) - total(few.cpu.runtime)) / extra;
  const proxyPerMessage = (total(many.cpu.proxy) - total(few.cpu.proxy)) / extra;
  const seconds = (c: WorkerdCpu) =>
    `${total(c.runtime).toFixed(2)} s (system ${c.runtime.system.toFixed(2)} s)`;
  reportFigure(
    `fanout CPU per delivered message (${FEW} vs ${MANY} consumers, ${2 * EVENTS_PER_HOST} events${THROUGH_PROXY ? ", through wrangler's proxy" : ""}${COUNT_ONLY ? ", counting consumers" : ""})`,
    perMessage * 1e6,
    "µs",
    `relay runtime CPU ${seconds(few.cpu)} vs ${seconds(many.cpu)}; system ${(((many.cpu.runtime.system - few.cpu.runtime.system) / extra) * 1e6).toFixed(1)} µs of it; wrangler's dev proxy, absent in production, adds ${(proxyPerMessage * 1e6).toFixed(1)} µs more`,
  );
  // at the network's 400 events/s, a Fanout kept at half a core carries this many consumers
  reportFigure(
    "full-firehose consumers per Fanout at 400 events/s and 50% of a core",
    0.5 / (400 * perMessage),
    "consumers",
  );
}
