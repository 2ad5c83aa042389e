import { CID } from "../../src/protocol/cid";
import { encodeFrame } from "../../src/protocol/frame";

const COMMIT_CID = CID.parse("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");

/** A commit-shaped frame of about `size` bytes (the sequencer never reads blocks). */
export function benchFrame(upstreamSeq: number, size: number): Uint8Array {
  return encodeFrame({
    kind: "commit",
    body: {
      seq: upstreamSeq,
      rebase: false,
      tooBig: false,
      repo: "did:plc:benchbenchbenchbenchbench",
      commit: COMMIT_CID,
      rev: "3l6jd7dvzeg2c",
      since: null,
      blocks: new Uint8Array(size - 200).fill(7),
      ops: [],
      blobs: [],
      time: "2024-01-01T00:00:00.000Z",
    },
  });
}

export function figure(line: string): void {
  console.log(`FIGURE ${line}`);
}
