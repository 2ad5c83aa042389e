import WebSocket from "ws";
import { decodeFrame } from "../src/protocol/frame";
import { type RelayProcess, requestCrawl, startRelay } from "../test/support/relay-process";
import { ScriptedPds, ScriptedPlc } from "../test/support/scripted-pds";

// The live path, end to end on this machine: scripted PDS hosts (real signed commits over real
// WebSockets) -> freehose under `wrangler dev` (HostIngesters -> Sequencer -> Fanouts) ->
// consumers in this process. Latency is measured on one clock: from the moment a host sends a
// frame to the moment a consumer receives it.

export type LiveSetup = {
  plc: ScriptedPlc;
  hosts: ScriptedPds[];
  relay: RelayProcess;
  frames: ((seq: number) => Uint8Array)[][];
  close(): Promise<void>;
};

/** Starts `hostCount` hosts with one account each and `framesPerHost` pre-signed commits. */
export async function startLive(
  hostCount: number,
  framesPerHost: number,
  vars: Record<string, string> = {},
): Promise<LiveSetup> {
  const plc = new ScriptedPlc();
  await plc.start();
  const hosts: ScriptedPds[] = [];
  const frames: ((seq: number) => Uint8Array)[][] = [];
  for (let i = 0; i < hostCount; i++) {
    const host = new ScriptedPds(plc);
    await host.start();
    const account = await host.addAccount();
    const list: ((seq: number) => Uint8Array)[] = [];
    for (let j = 0; j < framesPerHost; j++) list.push(await host.commitFrame(account));
    hosts.push(host);
    frames.push(list);
  }
  const relay = await startRelay({
    plcUrl: plc.url,
    // LIVE_DEVTOOLS=0: without wrangler's inspector (test/support/quiet-dev.ts), whose DevTools
    // traffic shares the cores with the relay (docs/benchmarks.md, "Without wrangler's DevTools")
    devTools: process.env.LIVE_DEVTOOLS !== "0",
    logLevel: process.env.FREEHOSE_BENCH_LOG === "1" ? "log" : "warn",
    vars: {
      NEW_HOST_EVENTS_PER_SECOND: "1000000",
      NEW_HOST_MAX_ACCOUNTS: "1000000",
      INGEST_SHARDS: String(Math.min(4, hostCount)),
      CONSUMER_MIN_BYTES_PER_SECOND: String(1024 * 1024 * 1024),
      ...vars,
    },
  });
  for (const host of hosts) {
    const res = await requestCrawl(relay.url, host.hostname);
    if (!res.ok)
      throw new Error(`requestCrawl ${host.hostname}: ${res.status} ${await res.text()}`);
  }
  return {
    plc,
    hosts,
    relay,
    frames,
    async close() {
      await relay.stop();
      for (const h of hosts) await h.close();
      await plc.close();
    },
  };
}

export type LiveConsumer = {
  received: number;
  latenciesMs: number[];
  close(): void;
  ready: Promise<void>;
};

/**
 * A live consumer that records, for every commit, the delay since its host sent it; with
 * `sentAt` null it only counts messages and decodes nothing (a consumer that costs its machine
 * as little CPU as possible). It offers permessage-deflate, as most WebSocket clients do, unless
 * `offerDeflate` is false.
 */
export function liveConsumer(
  url: string,
  sentAt: Map<string, number> | null,
  offerDeflate = true,
): LiveConsumer {
  const ws = new WebSocket(url, { perMessageDeflate: offerDeflate });
  const consumer: LiveConsumer = {
    received: 0,
    latenciesMs: [],
    close: () => ws.close(),
    ready: new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }),
  };
  ws.on("message", (data: Buffer) => {
    consumer.received++;
    if (sentAt === null) return;
    const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (frame.kind !== "commit") return;
    const sent = sentAt.get(frame.body.rev);
    if (sent !== undefined) consumer.latenciesMs.push(performance.now() - sent);
  });
  return consumer;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Sends every host's pre-signed frames at `perSecond` in total (0 = as fast as possible). */
export async function emit(
  setup: LiveSetup,
  perSecond: number,
  sentAt: Map<string, number>,
): Promise<number> {
  const queues = setup.frames.map((list) => [...list]);
  let sent = 0;
  const start = performance.now();
  for (;;) {
    let progressed = false;
    for (let h = 0; h < setup.hosts.length; h++) {
      const make = queues[h]?.shift();
      if (!make) continue;
      progressed = true;
      const host = setup.hosts[h] as ScriptedPds;
      host.push((seq) => {
        const frame = make(seq);
        const decoded = decodeFrame(frame);
        if (decoded.kind === "commit") sentAt.set(decoded.body.rev, performance.now());
        return frame;
      });
      sent++;
      if (perSecond > 0) {
        const due = start + (sent * 1000) / perSecond;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      } else if (sent % 200 === 0) {
        await new Promise((r) => setImmediate(r));
      }
    }
    if (!progressed) return sent;
  }
}

/** Resident memory of the workerd processes (KB), for the relay's peak memory. */
export async function workerdRssKb(): Promise<number> {
  const { execFileSync } = await import("node:child_process");
  const out = execFileSync("ps", ["-C", "workerd", "-o", "rss="]).toString();
  return out
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0)
    .reduce((a, b) => a + b, 0);
}

export { waitUntil } from "../test/support/wait";
