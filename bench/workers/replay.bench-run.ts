import { env, SELF } from "cloudflare:test";
import { it } from "vitest";
import { sequencerStub } from "../../src/stubs";
import { commitFrame } from "../../test/workers/support";
import { figure } from "./support";

// Replay to one consumer from a cursor far back: the events sit in sealed R2 segments, read in
// aligned windows through the Cache API, sent as WebSocket messages through the Worker.
it("replay throughput from R2 segments", async () => {
  const total = 200_000;
  const sequencer = sequencerStub(env);
  const frames = Array.from({ length: 1000 }, (_, i) => benchFrame(i + 1));
  for (let upstream = 0; upstream < total; ) {
    await sequencer.appendBatch({
      events: frames.map((frame) => ({
        host: "replay.bench",
        upstreamSeq: ++upstream,
        frame,
        did: "did:plc:benchbenchbenchbenchbench",
      })),
    });
  }
  await sequencer.sealNow();
  const state = await sequencer.getLogState();
  const start = Date.now();
  const res = await SELF.fetch("http://relay.bench/xrpc/com.atproto.sync.subscribeRepos?cursor=0", {
    headers: { Upgrade: "websocket" },
  });
  const ws = res.webSocket!;
  ws.binaryType = "arraybuffer";
  let received = 0;
  let bytes = 0;
  const done = new Promise<void>((resolve) => {
    ws.addEventListener("message", (e) => {
      received++;
      bytes += (e.data as ArrayBuffer).byteLength;
      if (received >= total) resolve();
    });
  });
  ws.accept();
  await done;
  const seconds = (Date.now() - start) / 1000;
  ws.close();
  figure(
    `replay from R2 segments: ${Math.round(received / seconds).toLocaleString("en-US")} events/s to one consumer (${total.toLocaleString("en-US")} events of ~1.5 KB, ${(bytes / seconds / 1e6).toFixed(1)} MB/s, ${state.segments} segments; target 50,000)`,
  );
});

/** A commit-shaped frame of about 1.5 KB (the Sequencer never reads its blocks). */
function benchFrame(upstreamSeq: number): Uint8Array {
  return commitFrame(upstreamSeq, "did:plc:benchbenchbenchbenchbench", 1300);
}
