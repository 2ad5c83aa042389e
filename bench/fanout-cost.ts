import { readdirSync, readFileSync } from "node:fs";
import type { RelayProcess } from "../test/support/relay-process";
import { emit, type LiveConsumer, liveConsumer, startLive, waitUntil } from "./live-harness";
import { reportFigure } from "./report";

// What one more consumer costs the relay in CPU: the same live input is delivered to a few and to
// many consumers, and the CPU time of the relay's workerd processes (user + system, from /proc)
// is compared. Ingestion and sequencing are the same in both runs, so the difference divided by
// the extra messages delivered is the CPU a Fanout spends per message it sends. docs/cost.md uses
// it for how many full-firehose consumers one Fanout object can carry (scripts/cost.ts).

const EVENTS_PER_HOST = 500;
const RATE = 250;
const FEW = 2;
const MANY = 40;

/** CPU seconds (user + system) of every workerd process in the relay's process group. */
function workerdCpuSeconds(relay: Pick<RelayProcess, "pid">, only?: "user" | "system"): number {
  const ticksPerSecond = 100;
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== relay.pid || !command.startsWith("workerd")) continue;
      // fields after the command: utime is the 12th, stime the 13th (0-based 11, 12)
      if (only !== "system") ticks += Number(fields[11]);
      if (only !== "user") ticks += Number(fields[12]);
    } catch {
      // the process ended while we read it
    }
  }
  return ticks / ticksPerSecond;
}

async function run(consumers: number): Promise<{ cpu: number; system: number; delivered: number }> {
  const setup = await startLive(2, EVENTS_PER_HOST);
  try {
    const sentAt = new Map<string, number>();
    const list: LiveConsumer[] = [];
    for (let i = 0; i < consumers; i++)
      list.push(liveConsumer(`${setup.relay.wsUrl}/xrpc/com.atproto.sync.subscribeRepos`, sentAt));
    await Promise.all(list.map((c) => c.ready));
    // let connection set-up finish before counting
    await new Promise((r) => setTimeout(r, 1_000));
    const before = workerdCpuSeconds(setup.relay);
    const systemBefore = workerdCpuSeconds(setup.relay, "system");
    const total = await emit(setup, RATE, sentAt);
    await waitUntil(() => list.every((c) => c.received >= total), 120_000);
    const cpu = workerdCpuSeconds(setup.relay) - before;
    const system = workerdCpuSeconds(setup.relay, "system") - systemBefore;
    for (const c of list) c.close();
    return { cpu, system, delivered: list.reduce((n, c) => n + c.received, 0) };
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
  const perMessage = (many.cpu - few.cpu) / Math.max(1, many.delivered - few.delivered);
  reportFigure(
    `fanout CPU per delivered message (${FEW} vs ${MANY} consumers, ${2 * EVENTS_PER_HOST} events)`,
    perMessage * 1e6,
    "µs",
    `relay CPU ${few.cpu.toFixed(2)} s vs ${many.cpu.toFixed(2)} s, of which system (kernel) ${few.system.toFixed(2)} s vs ${many.system.toFixed(2)} s`,
  );
  // at the network's 400 events/s, a Fanout kept at half a core carries this many consumers
  reportFigure(
    "full-firehose consumers per Fanout at 400 events/s and 50% of a core",
    0.5 / (400 * perMessage),
    "consumers",
  );
}
