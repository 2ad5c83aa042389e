import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { type RelayProcess, startRelay } from "../test/support/relay-process";

// What consumers that never read cost a Fanout's process. Runs the relay under `wrangler dev`
// (bench/workers/fanout-memory-worker.ts: the real Worker plus routes to fill the log), fills
// the log with ~1.5 KB commits, then opens N raw TCP WebSocket consumers with cursor=0 that
// read the 101 answer and never read again (the kernel buffers fill, then workerd's), and
// samples the resident memory of this relay's own workerd process. Each scenario starts a
// fresh relay on a copy of the filled log, so one scenario's memory does not leak into the next.
//
//   npx tsx bench/fanout-memory.ts [events=120000] [seconds=20]
// Scenarios: FANOUT_MEMORY_SCENARIOS="sockets:cap[:readers],..." (default "1:1000,8:1000,32:1000,32:4").

const ENTRY = join("bench", "workers", "fanout-memory-worker.ts");

const TRACE = process.env.FANOUT_MEMORY_TRACE === "1";
let TRACE_PROCESSES = false;

/** The real Worker plus the bench's routes (bench/workers/fanout-memory-worker.ts). */
function startBenchRelay(persistDir: string, vars: Record<string, string>): Promise<RelayProcess> {
  return startRelay({ entry: ENTRY, persistDir, vars });
}

/** Resident memory (KB) of the workerd processes under `rootPid` (not other people's). */
function workerdRssKb(rootPid: number): number {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      names.set(pid, stat.slice(stat.indexOf("(") + 1, close));
      parents.set(pid, Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  for (const [pid, name] of names) {
    if (name !== "workerd") continue;
    let p: number | undefined = pid;
    while (p !== undefined && p > 1 && p !== rootPid) p = parents.get(p);
    if (p !== rootPid) continue;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    if (TRACE_PROCESSES) console.error(`    workerd ${pid}: ${(kb / 1024).toFixed(0)} MB`);
    total += kb;
  }
  return total;
}

/** A consumer that completes the WebSocket upgrade and then never reads a byte. */
async function nonReadingConsumer(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.write(
        "GET /xrpc/com.atproto.sync.subscribeRepos?cursor=0 HTTP/1.1\r\n" +
          `Host: 127.0.0.1:${port}\r\n` +
          "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
    });
    let head = "";
    const onData = (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      if (!head.startsWith("HTTP/1.1 101")) reject(new Error(head.slice(0, 200)));
      socket.pause(); // from here on nothing is read: the kernel buffers fill, then workerd's
      resolve(socket);
    };
    socket.on("data", onData);
    socket.on("error", reject);
  });
}

async function fill(events: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "freehose-memory-"));
  const relay = await startBenchRelay(dir, {});
  try {
    for (let from = 1; from <= events; from += 20_000) {
      const count = Math.min(20_000, events - from + 1);
      const res = await fetch(`${relay.url}/bench/append?count=${count}&from=${from}&size=1500`, {
        method: "POST",
      });
      if (!res.ok) throw new Error(`append: ${res.status} ${await res.text()}`);
    }
    await fetch(`${relay.url}/bench/seal`, { method: "POST" });
  } finally {
    await relay.stop();
  }
  return dir;
}

type Outcome = {
  baselineMb: number;
  peakMb: number;
  endMb: number;
  /** RSS after 1, 2, 5 and 10 s (how fast it grows). */
  atMb: Record<number, number>;
  stats: unknown;
  /** Frames each reading consumer received, and how and when its socket closed (null: open). */
  readers: { frames: number; closed: string | null }[];
};

async function scenario(
  filled: string,
  sockets: number,
  cap: number,
  readerCount: number,
  seconds: number,
): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), "freehose-memory-run-"));
  cpSync(filled, dir, { recursive: true });
  const relay = await startBenchRelay(dir, {
    FANOUT_SHARDS: "1",
    FANOUT_MAX_CONCURRENT_REPLAYS: String(cap),
  });
  const consumers: Socket[] = [];
  const readers: { ws: WebSocket; frames: number; closed: string | null }[] = [];
  try {
    await new Promise((r) => setTimeout(r, 2_000));
    const baseline = workerdRssKb(relay.pid);
    for (let i = 0; i < sockets; i++) consumers.push(await nonReadingConsumer(relay.port));
    for (let i = 0; i < readerCount; i++) {
      const reader = {
        ws: new WebSocket(
          `ws://127.0.0.1:${relay.port}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`,
        ),
        frames: 0,
        closed: null as string | null,
      };
      const opened = Date.now();
      reader.ws.on("message", () => reader.frames++);
      reader.ws.on("close", (code, reason) => {
        reader.closed = `${code} ${reason.toString()} after ${((Date.now() - opened) / 1000).toFixed(1)} s`;
      });
      readers.push(reader);
    }
    const atMb: Record<number, number> = {};
    let peak = baseline;
    let end = baseline;
    for (let t = 0; t < seconds * 4; t++) {
      await new Promise((r) => setTimeout(r, 250));
      TRACE_PROCESSES = TRACE && t % 8 === 7;
      end = workerdRssKb(relay.pid);
      TRACE_PROCESSES = false;
      peak = Math.max(peak, end);
      if ([1, 2, 5, 10].includes((t + 1) / 4)) atMb[(t + 1) / 4] = end / 1024;
      if (TRACE && t % 4 === 3) {
        const stats = await (await fetch(`${relay.url}/bench/fanout-stats?name=fanout-0`)).json();
        console.error(`  ${(t + 1) / 4} s: ${(end / 1024).toFixed(0)} MB ${JSON.stringify(stats)}`);
      }
    }
    const stats = await (await fetch(`${relay.url}/bench/fanout-stats?name=fanout-0`)).json();
    if (TRACE) console.error(relay.output().slice(-3000));
    return {
      baselineMb: baseline / 1024,
      peakMb: peak / 1024,
      endMb: end / 1024,
      atMb,
      stats,
      readers: readers.map((r) => ({ frames: r.frames, closed: r.closed })),
    };
  } finally {
    for (const c of consumers) c.destroy();
    for (const r of readers) r.ws.terminate();
    await relay.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function main(): Promise<void> {
  const events = Number(process.argv[2] ?? 120_000);
  const seconds = Number(process.argv[3] ?? 20);
  const scenarios = (process.env.FANOUT_MEMORY_SCENARIOS ?? "1:1000,8:1000,32:1000,32:4")
    .split(",")
    .map((s) => s.split(":").map(Number) as [number, number, number?]);
  const started = Date.now();
  const filled = await fill(events);
  console.log(
    `log: ${events.toLocaleString("en-US")} events of ~1.5 KB (~${Math.round((events * 1.55) / 1024)} MB), filled in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  try {
    for (const [sockets, cap, readerCount = 0] of scenarios) {
      const o = await scenario(filled, sockets, cap, readerCount, seconds);
      console.log(
        `FIGURE fanout memory: ${sockets} non-reading consumers (cursor=0), replay cap ${cap}: workerd RSS ${o.baselineMb.toFixed(0)} MB -> peak ${o.peakMb.toFixed(0)} MB (+${(o.peakMb - o.baselineMb).toFixed(0)} MB; ${((o.peakMb - o.baselineMb) / sockets).toFixed(1)} MB per socket), ${o.endMb.toFixed(0)} MB after ${seconds} s (at 1/2/5/10 s: ${Object.values(
          o.atMb,
        )
          .map((mb) => mb.toFixed(0))
          .join(
            "/",
          )} MB)${readerCount > 0 ? `; ${readerCount} reading consumer(s): ${JSON.stringify(o.readers)}` : ""}; fanout ${JSON.stringify(o.stats)}`,
      );
    }
  } finally {
    rmSync(filled, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
