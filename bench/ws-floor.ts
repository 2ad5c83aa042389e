import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { type RelayProcess, startRelay } from "../test/support/relay-process";
import { reportFigure } from "./report";
import { cpuSince, runtimeWorkerPort, total, type WorkerdCpu, workerdCpu } from "./workerd-cpu";

// The platform's floor under bench/fanout-cost.ts: what workerd itself spends per WebSocket
// message of 1.5 KB sent to a consumer, with none of the relay's logic
// (bench/workers/ws-floor-worker.ts). Same method as fanout-cost: the same frames are sent to
// few and to many consumers and the CPU of the workerd processes (user + system, from /proc)
// is compared; the difference over the extra messages is the cost of one message. Measured for
// hibernatable sockets in a Durable Object (ctx.acceptWebSocket, as the Fanout), ws.accept()
// sockets in a Durable Object, and sockets the Worker accepts itself; each through wrangler's
// proxy (as fanout-cost's consumers connect) and straight to the runtime's own port.
// The consumers do not offer permessage-deflate: a floor is the send alone (the relay declines
// compression, wrangler.toml; locally miniflare's entry Worker would negotiate it anyway).
//
//   npm run bench -- ws-floor        (WS_FLOOR_MODES=hib,hibatt,plain,worker WS_FLOOR_COUNT=1000)

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const FEW = 2;
const MANY = 40;
const COUNT = Number(process.env.WS_FLOOR_COUNT ?? 1000);
// the Sequencer's cadence at 250 events/s: a delivery every 25 ms (FANOUT_DELIVERY_INTERVAL_MS)
// (WS_FLOOR_SHAPE=batch=20&interval=80&size=760: the relay's shape in fanout-cost)
const RUN = `count=${COUNT}&${process.env.WS_FLOOR_SHAPE ?? "batch=6&interval=25&size=1500"}`;
const MODES = (process.env.WS_FLOOR_MODES ?? "hib,hibatt,plain,worker").split(",");

export type Dev = Pick<RelayProcess, "port" | "pid" | "stop">;

/** The bare Worker and Durable Object of bench/workers/ws-floor-worker.ts under wrangler dev. */
export function startFloorDev(): Promise<Dev> {
  return startRelay({
    config: join(ROOT, "bench", "workers", "ws-floor.wrangler.toml"),
    logLevel: "error",
    ready: (url) =>
      fetch(`${url}/`).then(
        (r) => r.ok,
        () => false,
      ),
  });
}

type Consumer = { ws: WebSocket; received: number; ready: Promise<void> };

function consumer(url: string, offerDeflate: boolean): Consumer {
  const ws = new WebSocket(url, { perMessageDeflate: offerDeflate });
  const c: Consumer = {
    ws,
    received: 0,
    ready: new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }),
  };
  ws.on("message", () => {
    c.received++;
  });
  return c;
}

/**
 * `consumers` consumers of `mode` connected, `run` (the query of /run: count, batch, interval,
 * size) sent to them, and the runtime's CPU over the sending only (connecting and closing are
 * outside it).
 */
export async function measureFloor(
  dev: Dev,
  port: number,
  mode: string,
  consumers: number,
  run = RUN,
  offerDeflate = false,
) {
  const count = Number(new URLSearchParams(run).get("count"));
  const list: Consumer[] = [];
  for (let i = 0; i < consumers; i++)
    list.push(consumer(`ws://127.0.0.1:${port}/ws?mode=${mode}`, offerDeflate));
  await Promise.all(list.map((c) => c.ready));
  await new Promise((r) => setTimeout(r, 500));
  const before = workerdCpu(dev.pid, dev.port);
  if (mode === "worker") for (const c of list) c.ws.send(run);
  else {
    const res = await fetch(`http://127.0.0.1:${port}/run?mode=${mode}&${run}`);
    if (!res.ok) throw new Error(`run: ${res.status} ${await res.text()}`);
  }
  const deadline = Date.now() + 60_000;
  while (list.some((c) => c.received < count) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const cpu = cpuSince(before, workerdCpu(dev.pid, dev.port));
  const received = list.reduce((n, c) => n + c.received, 0);
  await Promise.all(
    list.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.ws.once("close", () => resolve());
          c.ws.close();
        }),
    ),
  );
  return { cpu, received };
}

const perMessageUs = (
  few: WorkerdCpu,
  many: WorkerdCpu,
  extra: number,
  part: "runtime" | "proxy" = "runtime",
) => ((total(many[part]) - total(few[part])) / extra) * 1e6;
const systemUs = (few: WorkerdCpu, many: WorkerdCpu, extra: number, part: "runtime" | "proxy") =>
  ((many[part].system - few[part].system) / extra) * 1e6;

export default async function main(): Promise<void> {
  if (process.platform !== "linux") {
    console.log("ws-floor: needs /proc (Linux); skipped");
    return;
  }
  const dev = await startFloorDev();
  try {
    const direct = await runtimeWorkerPort(dev.pid, dev.port, "/");
    for (const [path, port] of [
      ["through wrangler's proxy", dev.port],
      ["straight to the runtime", direct],
    ] as const) {
      for (const mode of MODES) {
        const few = await measureFloor(dev, port, mode, FEW);
        const many = await measureFloor(dev, port, mode, MANY);
        const extra = many.received - few.received;
        reportFigure(
          `workerd per 1.5 KB message, ${mode}, ${path}: runtime`,
          perMessageUs(few.cpu, many.cpu, extra),
          "µs",
          `of which system ${systemUs(few.cpu, many.cpu, extra, "runtime").toFixed(1)} µs; wrangler's proxy adds ${perMessageUs(few.cpu, many.cpu, extra, "proxy").toFixed(1)} µs (system ${systemUs(few.cpu, many.cpu, extra, "proxy").toFixed(1)}); ${many.received}/${MANY * COUNT} received`,
        );
      }
    }
  } finally {
    await dev.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
