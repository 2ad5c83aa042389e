import { env } from "cloudflare:test";
import { expect, it } from "vitest";
import { AppendClient } from "../../src/sequence/append-client";
import { decodeFrame } from "../../src/sequence/append-codec";
import { APPEND_SOCKET_PATH } from "../../src/sequence/append-socket";
import { sequencerStub } from "../../src/stubs";
import { ingestEvents } from "../../test/workers/support";
import { figure } from "./support";

// An append's round trip in workerd, from the appender's side: a batch of 5 events of 1.5 KB
// over the append socket (AppendClient, as an ingester sends it) against the same batch as a
// plain `appendBatch` RPC call, and each transport without a write (a frame the Sequencer
// refuses at once; `getHostCursor`), which tells the transport's share from the commit's and
// the output gate's. Sequential, one at a time (as an ingester appends), in alternating blocks
// of ROUNDS_PER_BLOCK so both see the same machine; between blocks a pause longer than group
// commit's DEFAULT_OTHERS_WITHIN_MS, so the socket's batches are a lone appender's (committed at
// once) and are not made to wait by the RPC calls' (each an appender of its own).
const BLOCKS = 16;
const ROUNDS_PER_BLOCK = 10;
const GAP_MS = 30;
const APPENDER_FORGOTTEN_MS = 1_100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** A socket of the Sequencer's own, for frames it answers without writing anything. */
async function rawAppendSocket() {
  const response = await sequencerStub(env).fetch(`https://sequencer${APPEND_SOCKET_PATH}`, {
    headers: { Upgrade: "websocket" },
  });
  const ws = response.webSocket;
  if (!ws) throw new Error(`no append socket: HTTP ${response.status}`);
  ws.binaryType = "arraybuffer";
  ws.accept();
  const waiting: ((data: ArrayBuffer) => void)[] = [];
  ws.addEventListener("message", (event) => waiting.shift()?.(event.data as ArrayBuffer));
  return {
    ws,
    answer: () => new Promise<ArrayBuffer>((resolve) => waiting.push(resolve)),
  };
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

it("append round trip: socket vs RPC", async () => {
  const host = "round-trip.bench";
  const sequencer = sequencerStub(env);
  const client = new AppendClient(env);
  const raw = await rawAppendSocket();
  const times: Record<string, number[]> = {
    "socket batch": [],
    "RPC appendBatch": [],
    "socket, no write": [],
    "RPC, no write": [],
  };
  await client.append({ events: ingestEvents(5, host) }); // warm up both
  await sequencer.appendBatch({ events: ingestEvents(5, host) });
  for (let block = 0; block < BLOCKS; block++) {
    await sleep(APPENDER_FORGOTTEN_MS);
    const socket = block % 2 === 0;
    for (let round = 0; round < ROUNDS_PER_BLOCK; round++) {
      if (socket) {
        times["socket batch"]!.push(
          await timed(async () => {
            const result = await client.append({ events: ingestEvents(5, host) });
            expect(result.accepted).toBe(5);
          }),
        );
        await sleep(GAP_MS);
        times["socket, no write"]!.push(
          await timed(async () => {
            const answer = raw.answer();
            raw.ws.send("not a batch");
            expect(decodeFrame(new Uint8Array(await answer)).kind).toBe("error");
          }),
        );
      } else {
        times["RPC appendBatch"]!.push(
          await timed(async () => {
            const result = await sequencer.appendBatch({ events: ingestEvents(5, host) });
            expect(result.accepted).toBe(5);
          }),
        );
        await sleep(GAP_MS);
        times["RPC, no write"]!.push(await timed(() => sequencer.getHostCursor(host)));
      }
      await sleep(GAP_MS);
    }
  }
  expect(client.plainCalls).toBe(0);
  for (const [name, values] of Object.entries(times))
    figure(
      `append round trip, ${name} (${values.length} sequential): p50 ${percentile(values, 50).toFixed(1)} ms, p90 ${percentile(values, 90).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`,
    );
  raw.ws.close();
  client.close();
});
