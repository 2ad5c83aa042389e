import { describe, expect, it } from "vitest";
import { readCar } from "../../src/protocol/car";
import { decodeDagCbor, encodeDagCbor } from "../../src/protocol/cbor";
import { CID } from "../../src/protocol/cid";
import { decodeCommit, unsignedCommitBytes } from "../../src/protocol/commit";
import { decodeFrame } from "../../src/protocol/frame";
import { loadCapturedFrames } from "../fixtures/captured";

// The bytes a signature covers are cut from the commit block rather than re-encoded: they must be
// exactly the canonical encoding of the commit without `sig`.

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const encoded = (c: ReturnType<typeof decodeCommit>) =>
  encodeDagCbor({ did: c.did, version: c.version, data: c.data, rev: c.rev, prev: c.prev });

describe("unsigned commit bytes", () => {
  it("are the re-encoded commit without sig, for every captured commit and sync", () => {
    let n = 0;
    for (const captured of loadCapturedFrames()) {
      const frame = decodeFrame(captured.bytes);
      if (frame.kind !== "commit" && frame.kind !== "sync") continue;
      const car = readCar(frame.body.blocks);
      const root = car.roots[0] as CID;
      const commit = decodeCommit(car.blocks.get(root.toString()) as Uint8Array);
      expect(hex(unsignedCommitBytes(commit))).toBe(hex(encoded(commit)));
      // read by the layout fast path: the values the general decoder gives
      const general = decodeDagCbor(car.blocks.get(root.toString()) as Uint8Array) as Record<
        string,
        unknown
      >;
      expect(hex(encodeDagCbor({ ...commit }))).toBe(hex(encodeDagCbor(general)));
      // the same array each time: cut once from the block, not encoded afresh
      expect(unsignedCommitBytes(commit)).toBe(unsignedCommitBytes(commit));
      n++;
    }
    expect(n).toBeGreaterThan(50);
  });

  const base = {
    did: "did:plc:abcdefghijklmnopqrstuvwx",
    version: 3,
    data: CID.parse("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"),
    rev: "3jzfcijpj2z2a",
    sig: new Uint8Array(64).fill(7),
  };

  it("cover prev: null for a commit that has no prev field, and a long did", () => {
    const absent = decodeCommit(encodeDagCbor(base));
    const { sig: _s, ...withoutSig } = base;
    expect(hex(unsignedCommitBytes(absent))).toBe(
      hex(encodeDagCbor({ ...withoutSig, prev: null })),
    );
    const longDid = { ...base, did: `did:web:${"a".repeat(300)}.example`, prev: base.data };
    const commit = decodeCommit(encodeDagCbor(longDid));
    expect(hex(unsignedCommitBytes(commit))).toBe(hex(encoded(commit)));
    const { sig: _sig, ...unsigned } = longDid;
    expect(hex(unsignedCommitBytes(commit))).toBe(hex(encodeDagCbor(unsigned)));
  });

  it("off the canonical layout are decided by the general decoder", () => {
    // keys out of canonical order: rejected, as before
    const block = encodeDagCbor({ ...base, prev: null });
    const swapped = new Uint8Array(block);
    expect(() => decodeCommit(new Uint8Array([...block, 0]))).toThrow(/bytes after/);
    swapped[2] = 0x72; // "did" -> "rid": not the layout, and out of order for the general decoder
    expect(() => decodeCommit(swapped)).toThrow();
    // a non-minimal version integer: rejected by the general decoder
    const nonMinimal = new Uint8Array([...block.subarray(0, block.length - 1), 0x18, 0x03]);
    expect(() => decodeCommit(nonMinimal)).toThrow(/minimal|canonical|smallest|necessary/i);
  });

  it("of a copy with another field are encoded from its fields", () => {
    const commit = decodeCommit(encodeDagCbor({ ...base, prev: null }));
    const copy = { ...commit, rev: "3jzfcijpj2z2b" };
    expect(hex(unsignedCommitBytes(copy))).toBe(hex(encoded(copy)));
    expect(hex(unsignedCommitBytes(copy))).not.toBe(hex(unsignedCommitBytes(commit)));
    expect(Object.isFrozen(commit)).toBe(true);
  });
});
