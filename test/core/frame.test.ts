import { Secp256k1Keypair } from "@atproto/crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { readCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { decodeCommit, verifyCommitSignature } from "../../src/protocol/commit";
import { parseDidKey } from "../../src/protocol/did-key";
import { checkCommitEvent } from "../../src/protocol/event-checks";
import {
  decodeFrame,
  encodeErrorFrame,
  encodeFrame,
  encodeInfoFrame,
  type Frame,
} from "../../src/protocol/frame";
import { MAX_FRAME_BYTES } from "../../src/protocol/limits";
import { readFrameSeq, rewriteFrameSeq } from "../../src/protocol/seq-rewrite";
import { errorName } from "../support/protocol-errors";
import { type ReferenceCommit, referenceCommits } from "../support/reference-frames";

const DID = "did:plc:framesframesframesframes";
let commits: ReferenceCommit[];
let keyDid: string;

beforeAll(async () => {
  const keypair = await Secp256k1Keypair.create();
  keyDid = keypair.did();
  commits = await referenceCommits(DID, keypair, 5, 3);
});

describe("frames made by the reference implementation", () => {
  it("decode, check and verify, and re-encode to the same bytes", () => {
    for (const c of commits) {
      const frame = decodeFrame(c.frame);
      expect(frame.kind).toBe("commit");
      if (frame.kind !== "commit") return;
      expect(frame.body).toMatchObject({
        seq: c.seq,
        repo: DID,
        rev: c.rev,
        tooBig: false,
        rebase: false,
      });
      expect(frame.body.ops).toHaveLength(3);
      const checked = checkCommitEvent(frame.body, Date.now());
      expect(verifyCommitSignature(checked.commit, parseDidKey(keyDid))).toBe(true);
      expect(Buffer.from(encodeFrame(frame)).equals(Buffer.from(c.frame))).toBe(true);
    }
  });

  it("the CAR reader sees the same blocks as the reference's commit", () => {
    const frame = decodeFrame(commits[0]!.frame);
    if (frame.kind !== "commit") throw new Error("not a commit");
    const car = readCar(frame.body.blocks);
    expect(car.roots.map(String)).toEqual([frame.body.commit.toString()]);
    const commit = decodeCommit(car.blocks.get(frame.body.commit.toString())!);
    expect(commit.did).toBe(DID);
    for (const op of frame.body.ops) expect(car.blocks.has(String(op.cid))).toBe(true);
  });
});

describe("frame codec", () => {
  const others: Frame[] = [
    {
      kind: "identity",
      body: { seq: 5, did: DID, time: "2024-01-01T00:00:00.000Z", handle: "alice.test" },
    },
    {
      kind: "account",
      body: {
        seq: 6,
        did: DID,
        time: "2024-01-01T00:00:00.000Z",
        active: false,
        status: "deactivated",
      },
    },
    { kind: "info", body: { name: "OutdatedCursor", message: "too old" } },
    { kind: "error", body: { error: "FutureCursor", message: "ahead" } },
  ];

  it.each(others.map((f) => [f.kind, f] as const))("round-trips #%s", (_k, frame) => {
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
  });

  it("encodes info and error frames", () => {
    expect(decodeFrame(encodeInfoFrame("OutdatedCursor"))).toEqual({
      kind: "info",
      body: { name: "OutdatedCursor" },
    });
    expect(decodeFrame(encodeErrorFrame("ConsumerTooSlow", "bye"))).toEqual({
      kind: "error",
      body: { error: "ConsumerTooSlow", message: "bye" },
    });
  });

  it("gives each malformed frame its specific error", () => {
    const good = commits[0]!.frame;
    expect(errorName(() => decodeFrame(good.subarray(0, good.length - 10)))).toBe("InvalidCbor");
    expect(errorName(() => decodeFrame(new Uint8Array([...good, 0x00])))).toBe("TrailingBytes");
    // removed event types are not relayed
    expect(
      errorName(() =>
        decodeFrame(
          rebuild({ op: 1, t: "#handle" }, { seq: 1, did: DID, handle: "x.test", time: "t" }),
        ),
      ),
    ).toBe("UnknownFrameType");
    expect(errorName(() => decodeFrame(rebuild({ op: 2, t: "#commit" }, {})))).toBe("InvalidFrame");
    expect(
      errorName(() =>
        decodeFrame(rebuild({ op: 1, t: "#identity" }, { seq: "1", did: DID, time: "t" })),
      ),
    ).toBe("InvalidFrame");
    expect(
      errorName(() =>
        decodeFrame(rebuild({ op: 1, t: "#account" }, { seq: 1, did: DID, time: "t" })),
      ),
    ).toBe("InvalidFrame");
    expect(errorName(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1)))).toBe("TooBig");
  });
});

function rebuild(header: unknown, body: unknown): Uint8Array {
  const h = encodeDagCbor(header);
  const b = encodeDagCbor(body);
  return new Uint8Array([...h, ...b]);
}

describe("seq rewrite", () => {
  it.each([
    1,
    23,
    24,
    255,
    256,
    65_535,
    65_536,
    2 ** 32 - 1,
    2 ** 32,
    20_000_000_000,
    Number.MAX_SAFE_INTEGER,
  ])("rewrites to %d changing nothing else", (seq) => {
    const original = commits[2]!.frame;
    const rewritten = rewriteFrameSeq(original, seq);
    expect(readFrameSeq(rewritten)).toBe(seq);
    const before = decodeFrame(original);
    const after = decodeFrame(rewritten);
    expect({ ...after.body, seq: 0 }).toEqual({ ...before.body, seq: 0 });
    // still canonical: our encoder produces exactly these bytes
    expect(Buffer.from(encodeFrame(after)).equals(Buffer.from(rewritten))).toBe(true);
  });

  it("has no seq to rewrite in #info frames", () => {
    expect(readFrameSeq(encodeInfoFrame("OutdatedCursor"))).toBeNull();
    expect(errorName(() => rewriteFrameSeq(encodeInfoFrame("OutdatedCursor"), 5))).toBe(
      "InvalidFrame",
    );
  });
});
