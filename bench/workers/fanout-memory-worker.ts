import type { Env } from "../../src/env";
import worker from "../../src/index";
import { CID } from "../../src/protocol/cid";
import { encodeFrame } from "../../src/protocol/frame";
import { fanoutStub, sequencerStub } from "../../src/stubs";

// The relay as `wrangler dev` runs it, plus three routes for bench/fanout-memory.ts: fill the
// log quickly (straight into the Sequencer, as ingesters would), seal it, and read a Fanout's
// stats. The memory benchmark and bench/http-replay.ts start this entry point; it is never
// deployed.

export { Fanout, HostDirectory, HostIngester, RepoIndex, Sequencer } from "../../src/index";

const BATCH = 500;
const EMPTY_CID = CID.parse("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");

/** A commit-shaped frame of about `size` bytes (the Sequencer never looks inside blocks). */
function commitFrame(size: number): Uint8Array {
  return encodeFrame({
    kind: "commit",
    body: {
      seq: 1,
      rebase: false,
      tooBig: false,
      repo: "did:plc:benchbenchbenchbenchbench",
      commit: EMPTY_CID,
      rev: "3l6jd7dvzeg2c",
      since: null,
      blocks: new Uint8Array(size).fill(7),
      ops: [],
      blobs: [],
      time: new Date(0).toISOString(),
    },
  });
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/bench/append") {
      const count = Number(url.searchParams.get("count") ?? "0");
      const size = Number(url.searchParams.get("size") ?? "1500");
      const from = Number(url.searchParams.get("from") ?? "1");
      const sequencer = sequencerStub(env);
      const frame = commitFrame(size);
      for (let done = 0; done < count; done += BATCH) {
        const events = [];
        for (let i = done; i < Math.min(count, done + BATCH); i++)
          events.push({
            host: "memory.bench",
            upstreamSeq: from + i,
            frame,
            did: "did:plc:benchbenchbenchbenchbench",
          });
        await sequencer.appendBatch({ events });
      }
      return Response.json(await sequencer.getLogState());
    }
    if (url.pathname === "/bench/seal") return Response.json(await sequencerStub(env).sealNow());
    if (url.pathname === "/bench/fanout-stats")
      return Response.json(
        await fanoutStub(env, url.searchParams.get("name") ?? "fanout-0").stats(),
      );
    return worker.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
