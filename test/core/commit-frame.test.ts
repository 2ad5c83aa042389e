import { describe, expect, it } from "vitest";
import { decodeDagCbor, decodeDagCborFirst, encodeDagCbor } from "../../src/protocol/cbor";
import { decodeCanonicalCommitFrame } from "../../src/protocol/commit-frame";
import { decodeFrame } from "../../src/protocol/frame";
import { loadCapturedFrames } from "../fixtures/captured";
import { errorName } from "../support/protocol-errors";

// The layout fast path for #commit frames must give the body the general decoder gives, and leave
// every other frame to it.

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const commits = loadCapturedFrames().filter((c) => c.kind === "commit");

function frameOf(header: unknown, body: unknown): Uint8Array {
  return new Uint8Array([...encodeDagCbor(header), ...encodeDagCbor(body)]);
}

describe("#commit frames read by their layout", () => {
  it("give, for every captured commit, the body the general decoder reads", () => {
    expect(commits.length).toBeGreaterThan(40);
    let withPrevData = 0;
    for (const c of commits) {
      const fast = decodeCanonicalCommitFrame(c.bytes);
      expect(fast).not.toBeNull();
      const [, bodyBytes] = decodeDagCborFirst(c.bytes);
      // the fast body holds exactly the general decoder's fields and values
      expect(hex(encodeDagCbor(fast))).toBe(hex(bodyBytes));
      expect(hex(encodeDagCbor(decodeDagCbor(bodyBytes)))).toBe(hex(bodyBytes));
      if (fast?.prevData) withPrevData++;
      expect(decodeFrame(c.bytes)).toEqual({ kind: "commit", body: fast });
    }
    expect(withPrevData).toBeGreaterThan(10);
  });

  it("leave other layouts to the general decoder", () => {
    const c = commits.find((f) => (f.ops?.length ?? 0) > 0) as (typeof commits)[number];
    const [, bodyBytes] = decodeDagCborFirst(c.bytes);
    const body = decodeDagCbor(bodyBytes) as Record<string, unknown>;
    const header = { op: 1, t: "#commit" };
    // an extra field: general path, which leaves it out
    const extra = frameOf(header, { ...body, zExtra: 1 });
    expect(decodeCanonicalCommitFrame(extra)).toBeNull();
    expect(hex(encodeDagCbor(decodeFrame(extra).body))).toBe(hex(bodyBytes));
    // a non-ASCII path: general path (which reads it; the event checks reject it later)
    const ops = body.ops as Record<string, unknown>[];
    const odd = frameOf(header, { ...body, ops: [{ ...ops[0], path: "app.bsky.feed.post/é" }] });
    expect(decodeCanonicalCommitFrame(odd)).toBeNull();
    expect((decodeFrame(odd).body as { ops: { path: string }[] }).ops[0]?.path).toBe(
      "app.bsky.feed.post/é",
    );
    // a null prevData, an unknown action, trailing bytes: rejected by the general path as before
    const nullPrev = frameOf(header, { ...body, prevData: null });
    expect(decodeCanonicalCommitFrame(nullPrev)).toBeNull();
    expect(errorName(() => decodeFrame(nullPrev))).toBe("InvalidFrame");
    const badAction = frameOf(header, { ...body, ops: [{ ...ops[0], action: "move" }] });
    expect(decodeCanonicalCommitFrame(badAction)).toBeNull();
    expect(errorName(() => decodeFrame(badAction))).toBe("InvalidFrame");
    const trailing = new Uint8Array([...c.bytes, 0]);
    expect(decodeCanonicalCommitFrame(trailing)).toBeNull();
    expect(errorName(() => decodeFrame(trailing))).toBe("TrailingBytes");
    // a non-minimal seq: the general strict decoder rejects it
    const seqAt = hex(bodyBytes).indexOf(hex(encodeDagCbor("seq")));
    expect(seqAt).toBeGreaterThan(0);
    const seqValue = body.seq as number;
    if (seqValue < 0x10000) {
      const at = seqAt / 2 + 4;
      const headerBytes = c.bytes.subarray(0, c.bytes.length - bodyBytes.length);
      const valueLength = seqValue < 24 ? 1 : seqValue < 0x100 ? 2 : 3;
      const nonMinimal = new Uint8Array([
        ...headerBytes,
        ...bodyBytes.subarray(0, at),
        0x1a,
        0,
        0,
        (seqValue >> 8) & 0xff,
        seqValue & 0xff,
        ...bodyBytes.subarray(at + valueLength),
      ]);
      expect(decodeCanonicalCommitFrame(nonMinimal)).toBeNull();
      expect(errorName(() => decodeFrame(nonMinimal))).toBe("NonCanonicalCbor");
    }
  });
});
