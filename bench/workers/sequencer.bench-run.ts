import { env } from "cloudflare:test";
import { it } from "vitest";
import { sequencerStub } from "../../src/stubs";
import { commitFrame } from "../../test/workers/support";
import { figure } from "./support";

// Sequencer append throughput: batches of ~1.5 KB frames from 8 hosts (as HostIngesters send
// them: one RPC per batch), 4 batches in flight at once, seq assignment + seq rewrite + one
// SQLite row per batch + sealing to R2 as segments fill.
it("sequencer append throughput", async () => {
  const sequencer = sequencerStub(env);
  const batchSize = 200;
  const hosts = 8;
  const frames = Array.from({ length: batchSize }, (_, i) => benchFrame(i + 1));
  const upstream = new Array<number>(hosts).fill(0);
  const run = async (ms: number) => {
    let events = 0;
    const start = Date.now();
    let h = 0;
    while (Date.now() - start < ms) {
      const inflight: Promise<unknown>[] = [];
      for (let k = 0; k < 4; k++) {
        const host = h++ % hosts;
        const events_ = frames.map((frame) => ({
          host: `pds${host}.bench`,
          upstreamSeq: ++upstream[host]!,
          did: "did:plc:benchbenchbenchbenchbench",
          frame,
        }));
        inflight.push(sequencer.appendBatch({ events: events_ }));
      }
      await Promise.all(inflight);
      events += 4 * batchSize;
    }
    return (events * 1000) / (Date.now() - start);
  };
  await run(1000); // warm up
  const rate = await run(8000);
  const state = await sequencer.getLogState();
  figure(
    `sequencer append (1.5 KB frames, batches of ${batchSize}): ${Math.round(rate).toLocaleString("en-US")} events/s sustained over 8 s (target 20,000); ${state.segments} segments sealed, head seq ${state.headSeq}`,
  );
});

/** A commit-shaped frame of about 1.5 KB (the Sequencer never reads its blocks). */
function benchFrame(upstreamSeq: number): Uint8Array {
  return commitFrame(upstreamSeq, "did:plc:benchbenchbenchbenchbench", 1300);
}
