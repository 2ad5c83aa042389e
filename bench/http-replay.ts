import { join } from "node:path";
import WebSocket from "ws";
import { replay } from "../src/client";
import { startRelay } from "../test/support/relay-process";
import { reportFigure, reportRatio } from "./report";

// History over HTTP against the same history over one socket, in the same run. The relay runs
// under `wrangler dev` (bench/workers/fanout-memory-worker.ts: the real Worker plus routes that
// fill the log straight into the Sequencer, as ingesters would) with 200,000 commit-shaped
// events of ~1.5 KB sealed into R2 segments of the default 16 MiB. Then, from Node over loopback:
//   reference: one `ws` consumer of subscribeRepos?cursor=0 counting messages (no decoding);
//   ours:      the client's replay({ cursor: 0, historyOnly: true }): plan, 4 parallel segment
//              downloads, events yielded in order with seq, type and frame (the body is
//              decoded on first read, so it is not read here, as the socket's is not);
//   and once more reading every body (on a quarter of the events; the segments are in the
//   relay's edge cache by then), to show what strict DAG-CBOR decoding costs a consumer.
// Goal (issue 12): the client ≥ 4× the socket.

const ENTRY = join("bench", "workers", "fanout-memory-worker.ts");
const TOTAL = Number(process.env.HTTP_REPLAY_EVENTS ?? 200_000);

async function socketReplay(
  wsUrl: string,
): Promise<{ seconds: number; bytes: number; events: number }> {
  const start = performance.now();
  const ws = new WebSocket(`${wsUrl}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`);
  let received = 0;
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    ws.on("message", (data: Buffer) => {
      received++;
      bytes += data.byteLength;
      if (received >= TOTAL) resolve();
    });
    ws.on("error", reject);
  });
  const seconds = (performance.now() - start) / 1000;
  ws.close();
  return { seconds, bytes, events: TOTAL };
}

async function clientReplay(
  url: string,
  total: number,
  readBodies: boolean,
): Promise<{ seconds: number; bytes: number; events: number }> {
  const start = performance.now();
  let received = 0;
  let bytes = 0;
  let repos = 0;
  for await (const event of replay({ service: url, cursor: 0, historyOnly: true })) {
    received++;
    bytes += event.frame.byteLength;
    if (readBodies && event.type === "#commit" && event.body.repo) repos++;
    if (received >= total) break;
  }
  const seconds = (performance.now() - start) / 1000;
  if (received < total) throw new Error(`the client yielded ${received} of ${total} events`);
  if (readBodies && repos !== total) throw new Error(`decoded ${repos} of ${total} bodies`);
  return { seconds, bytes, events: total };
}

export default async function main(): Promise<void> {
  const relay = await startRelay({ entry: ENTRY });
  try {
    const filling = performance.now();
    for (let from = 1; from <= TOTAL; from += 20_000) {
      const res = await fetch(
        `${relay.url}/bench/append?count=${Math.min(20_000, TOTAL - from + 1)}&size=1300&from=${from}`,
      );
      if (!res.ok) throw new Error(`append: ${res.status} ${await res.text()}`);
    }
    const seal = await fetch(`${relay.url}/bench/seal`);
    if (!seal.ok) throw new Error(`seal: ${seal.status} ${await seal.text()}`);
    const plan = (await (await fetch(`${relay.url}/segments?after=0&limit=1000`)).json()) as {
      segments: unknown[];
      sealedThrough: number;
    };
    if (plan.sealedThrough < TOTAL)
      throw new Error(`only ${plan.sealedThrough} of ${TOTAL} events sealed`);
    console.log(
      `filled ${TOTAL.toLocaleString("en-US")} events into ${plan.segments.length} segments in ${((performance.now() - filling) / 1000).toFixed(1)} s`,
    );

    const socket = await socketReplay(relay.wsUrl);
    const client = await clientReplay(relay.url, TOTAL, false);
    // on a quarter of the events: decoding is the slow part, and its rate does not need more
    const decoded = await clientReplay(relay.url, Math.ceil(TOTAL / 4), true);
    const rate = (r: { seconds: number; events: number }) => r.events / r.seconds;
    const mbps = (r: { seconds: number; bytes: number }) => r.bytes / r.seconds / 1e6;
    reportRatio(
      `history replay of ${TOTAL.toLocaleString("en-US")} events (client over HTTP segments vs subscribeRepos?cursor=0)`,
      rate(client),
      rate(socket),
      "events/s",
    );
    reportRatio("  the same in frame bytes", mbps(client), mbps(socket), "MB/s");
    reportFigure(
      `  client reading every event's body (strict DAG-CBOR decode), first ${decoded.events.toLocaleString("en-US")} events`,
      rate(decoded),
      "events/s",
      `${mbps(decoded).toFixed(1)} MB/s`,
    );
    reportFigure("  goal", 4, "× the socket", rate(client) >= 4 * rate(socket) ? "met" : "not met");
  } finally {
    await relay.stop();
  }
}
