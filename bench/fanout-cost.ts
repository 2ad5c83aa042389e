import { type ChildProcess, spawn } from "node:child_process";
import {
  emit,
  type LiveConsumer,
  type LiveSetup,
  liveConsumer,
  startLive,
  waitUntil,
} from "./live-harness";
import { reportFigure, reportRatio } from "./report";
import {
  type CpuSeconds,
  cpuSince,
  runtimePid,
  runtimeWorkerPort,
  type WorkerdCpu,
  workerdCpu,
} from "./workerd-cpu";
import { type Dev, measureFloor, startFloorDev } from "./ws-floor";

// What one more consumer costs the relay in CPU, per message sent to it. One relay process,
// warmed up by a first burst that is not counted, then phases alternate in it: FEW consumers
// connected -> K events emitted -> MANY connected -> K events -> FEW -> MANY ... The consumers
// beyond FEW connect before a MANY phase and leave after it, outside the measured windows, and
// the CPU of the runtime's workerd (user and system apart, /proc) is taken over each phase's
// emission and delivery only. Ingestion and sequencing are the same K events in both phases of a
// pair, so the difference over the extra messages delivered is what a Fanout spends per message
// it sends; each pair gives one figure, and the median of the pairs is the bench's.
// Pairs alternate two kinds of extra consumers: ones that do not offer permessage-deflate (what
// every consumer gets from a deployed relay, which declines compression: wrangler.toml's
// no_web_socket_compression) and ones that offer it (as most clients do: what a relay that
// compresses pays; locally miniflare's entry Worker negotiates compression whatever the relay's
// flags, in the same workerd thread).
// The floor under it, workerd sending the same number of frames of the same size in the relay's
// delivery shape from a bare Durable Object with hibernatable sockets (bench/ws-floor.ts, hib,
// consumers not offering compression), is measured the same way afterwards in this process, and
// the ratio relay/floor printed. docs/cost.md prices a relayed Fanout's busy time with the first
// kind's median (scripts/cost.ts).
// Consumers connect straight to the runtime's port, past wrangler's dev proxy, which production
// does not have.
//
//   FANOUT_COST_PAIRS=3 FANOUT_COST_EVENTS=1000   pairs of each kind, events per phase
//   FANOUT_COST_CONSUMER=decode                    consumers decode every frame (default: count)
//   FANOUT_COST_TRACE=perf|strace                  record the first pair's phases with
//     `perf record -g` or `strace -c -f` attached to the runtime (files in FANOUT_COST_TRACE_DIR,
//     default /tmp); a traced pair's figure is reported but carries the tracer's overhead

const HOSTS = 2;
const FEW = 2;
const MANY = 40;
const RATE = 250;
const PAIRS = Number(process.env.FANOUT_COST_PAIRS ?? 3);
const EVENTS_PER_PHASE = Number(process.env.FANOUT_COST_EVENTS ?? 1000);
const WARM_UP_EVENTS = 400;
const DECODE = process.env.FANOUT_COST_CONSUMER === "decode";
const TRACE = process.env.FANOUT_COST_TRACE;
const TRACE_DIR = process.env.FANOUT_COST_TRACE_DIR ?? "/tmp";
// the relay's delivery shape at 250 events/s from 2 hosts as docs/benchmarks.md gives it: ~20
// records per delivery, one every ~80 ms
const FLOOR_BATCH = 20;
const FLOOR_INTERVAL_MS = 80;

type Phase = { cpu: WorkerdCpu; delivered: number };
type PairFigure = { user: number; system: number; total: number };
/** Extra consumers that offer permessage-deflate ("deflate") or do not ("plain"). */
type Kind = "plain" | "deflate";
const KINDS: readonly Kind[] = ["plain", "deflate"];

/** The events of `setup` from index `from` (per host) to `to`, as a setup `emit` can send. */
function slice(setup: LiveSetup, from: number, to: number): LiveSetup {
  return { ...setup, frames: setup.frames.map((list) => list.slice(from, to)) };
}

function trace(tool: string, pid: number, name: string): ChildProcess {
  const args =
    tool === "perf"
      ? ["record", "-g", "-o", `${TRACE_DIR}/fanout-cost-${name}.perf.data`, "-p", String(pid)]
      : ["-c", "-f", "-o", `${TRACE_DIR}/fanout-cost-${name}.strace.txt`, "-p", String(pid)];
  return spawn(tool === "perf" ? "perf" : "strace", args, { stdio: "ignore" });
}

async function untrace(child: ChildProcess | null): Promise<void> {
  if (!child) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGINT");
  await exited;
}

function perMessage(few: Phase, many: Phase): PairFigure {
  const extra = many.delivered - few.delivered;
  const d = (k: keyof CpuSeconds) => ((many.cpu.runtime[k] - few.cpu.runtime[k]) / extra) * 1e6;
  return { user: d("user"), system: d("system"), total: d("user") + d("system") };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

const describe = (figures: PairFigure[]): string =>
  figures
    .map((f) => `${f.total.toFixed(1)} (user ${f.user.toFixed(1)}, system ${f.system.toFixed(1)})`)
    .join(", ");

async function closeAll(list: LiveConsumer[]): Promise<void> {
  for (const c of list) c.close();
  // the closes reach the Fanout and finish before the next phase is measured
  await new Promise((r) => setTimeout(r, 1_000));
}

async function relayPairs(): Promise<{
  figures: Record<Kind, PairFigure[]>;
  frameBytes: number;
}> {
  const perHost = (WARM_UP_EVENTS + 2 * KINDS.length * PAIRS * EVENTS_PER_PHASE) / HOSTS;
  const setup = await startLive(HOSTS, perHost);
  try {
    const port = await runtimeWorkerPort(setup.relay.pid, setup.relay.port, "/xrpc/_health");
    const pid = runtimePid(setup.relay.pid, setup.relay.port);
    const url = `ws://127.0.0.1:${port}/xrpc/com.atproto.sync.subscribeRepos`;
    const sentAt = new Map<string, number>();
    const connect = async (n: number, kind: Kind) => {
      const list: LiveConsumer[] = [];
      for (let i = 0; i < n; i++)
        list.push(liveConsumer(url, DECODE ? sentAt : null, kind === "deflate"));
      await Promise.all(list.map((c) => c.ready));
      return list;
    };
    const few = await connect(FEW, "plain");
    let next = 0;
    const phase = async (extra: LiveConsumer[], events: number, name: string): Promise<Phase> => {
      const all = [...few, ...extra];
      const start = all.map((c) => c.received);
      // connection set-up and earlier closes finish before counting
      await new Promise((r) => setTimeout(r, 1_000));
      const tracer = TRACE && name.endsWith("-1") ? trace(TRACE, pid, name) : null;
      if (tracer) await new Promise((r) => setTimeout(r, 500));
      const before = workerdCpu(setup.relay.pid, setup.relay.port);
      const emitted = await emit(slice(setup, next, next + events / HOSTS), RATE, sentAt);
      next += events / HOSTS;
      await waitUntil(
        () => all.every((c, i) => c.received - (start[i] as number) >= emitted),
        120_000,
      );
      const cpu = cpuSince(before, workerdCpu(setup.relay.pid, setup.relay.port));
      await untrace(tracer);
      const { user, system } = cpu.runtime;
      console.log(
        `  ${name}: ${all.length} consumers, ${emitted} events, runtime user ${user.toFixed(2)} s, system ${system.toFixed(2)} s`,
      );
      return { cpu, delivered: all.reduce((n, c, i) => n + c.received - (start[i] as number), 0) };
    };
    await phase([], WARM_UP_EVENTS, "warm-up");
    const figures: Record<Kind, PairFigure[]> = { plain: [], deflate: [] };
    for (let pair = 1; pair <= PAIRS; pair++) {
      for (const kind of KINDS) {
        const fewPhase = await phase([], EVENTS_PER_PHASE, `few-${kind}-${pair}`);
        const extra = await connect(MANY - FEW, kind);
        const manyPhase = await phase(extra, EVENTS_PER_PHASE, `many-${kind}-${pair}`);
        await closeAll(extra);
        figures[kind].push(perMessage(fewPhase, manyPhase));
      }
    }
    await closeAll(few);
    const sizes = setup.frames
      .flat()
      .slice(0, 50)
      .map((make) => make(1).byteLength);
    return { figures, frameBytes: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) };
  } finally {
    await setup.close();
  }
}

async function floorPairs(frameBytes: number): Promise<PairFigure[]> {
  const dev: Dev = await startFloorDev();
  try {
    const port = await runtimeWorkerPort(dev.pid, dev.port, "/");
    const run = (count: number) =>
      `count=${count}&batch=${FLOOR_BATCH}&interval=${FLOOR_INTERVAL_MS}&size=${frameBytes}`;
    await measureFloor(dev, port, "hib", FEW, run(WARM_UP_EVENTS));
    const figures: PairFigure[] = [];
    for (let pair = 1; pair <= PAIRS; pair++) {
      const few = await measureFloor(dev, port, "hib", FEW, run(EVENTS_PER_PHASE));
      const many = await measureFloor(dev, port, "hib", MANY, run(EVENTS_PER_PHASE));
      figures.push(
        perMessage(
          { cpu: few.cpu, delivered: few.received },
          { cpu: many.cpu, delivered: many.received },
        ),
      );
    }
    return figures;
  } finally {
    await dev.stop();
  }
}

export default async function main(): Promise<void> {
  if (process.platform !== "linux") {
    console.log("fanout-cost: needs /proc (Linux); skipped");
    return;
  }
  const relay = await relayPairs();
  const floor = await floorPairs(relay.frameBytes);
  const summary = (figures: PairFigure[]) =>
    `median of pairs ${describe(figures)}; user median ${median(figures.map((f) => f.user)).toFixed(1)}, system median ${median(figures.map((f) => f.system)).toFixed(1)}`;
  const shape = `${FEW} vs ${MANY} consumers, ${EVENTS_PER_PHASE} events a phase, ${PAIRS} pairs of each kind, ~${relay.frameBytes} B frames${DECODE ? ", decoding consumers" : ""}${TRACE ? `, first pairs traced by ${TRACE}` : ""}`;
  const ours = median(relay.figures.plain.map((f) => f.total));
  const deflated = median(relay.figures.deflate.map((f) => f.total));
  const reference = median(floor.map((f) => f.total));
  reportFigure(
    `fanout CPU per delivered message, relay, uncompressed (${shape})`,
    ours,
    "µs",
    summary(relay.figures.plain),
  );
  reportFigure(
    "fanout CPU per delivered message, relay, consumers offering permessage-deflate",
    deflated,
    "µs",
    summary(relay.figures.deflate),
  );
  reportFigure(
    `workerd floor per message, ws-floor hib at the relay's shape (${FLOOR_BATCH} every ${FLOOR_INTERVAL_MS} ms)`,
    reference,
    "µs",
    summary(floor),
  );
  reportRatio("fanout CPU per message, relay against workerd's floor", ours, reference, "µs");
  reportRatio(
    "fanout CPU per message, deflate-offering consumers against uncompressed",
    deflated,
    ours,
    "µs",
  );
  // at the network's 400 events/s, a Fanout kept at half a core carries this many consumers
  reportFigure(
    "full-firehose consumers per Fanout at 400 events/s and 50% of a core",
    0.5 / (400 * ours * 1e-6),
    "consumers",
  );
}
