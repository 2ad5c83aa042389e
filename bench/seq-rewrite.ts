import { cborDecodeMulti, cborEncode } from "@atproto/common";
import { rewriteFrameSeq } from "../src/protocol/seq-rewrite";
import { benchAccounts, opsPerSecond } from "./fixtures";
import { reportRatio } from "./report";

// The relay changes the seq of every event it forwards. Ours splices the new integer into the
// frame; the reference way is to decode the frame and encode it again with the new seq.
export default async function main(): Promise<void> {
  for (const ops of [1, 10]) {
    const frames = (await benchAccounts(2, 10, ops)).flatMap((a) => a.commits.map((c) => c.frame));
    const avg = Math.round(frames.reduce((n, f) => n + f.byteLength, 0) / frames.length);
    let i = 0;
    const ours = opsPerSecond(() => {
      rewriteFrameSeq(frames[i++ % frames.length] as Uint8Array, 20_000_000_000 + i);
    });
    const reference = opsPerSecond(() => {
      const frame = frames[i++ % frames.length] as Uint8Array;
      const [header, body] = cborDecodeMulti(frame) as [unknown, Record<string, unknown>];
      body.seq = 20_000_000_000 + i;
      const h = cborEncode(header);
      const b = cborEncode(body);
      const out = new Uint8Array(h.length + b.length);
      out.set(h, 0);
      out.set(b, h.length);
    });
    reportRatio(`seq-rewrite (${ops}-op commits, ~${avg} B)`, ours, reference, "frames/s");
  }
}
