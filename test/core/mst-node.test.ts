import { describe, expect, it } from "vitest";
import { readCar } from "../../src/protocol/car";
import { decodeDagCbor, encodeDagCbor } from "../../src/protocol/cbor";
import { CID } from "../../src/protocol/cid";
import { decodeFrame } from "../../src/protocol/frame";
import { leavesOf, mstRoot } from "../../src/protocol/mst";
import { decodeMstNode, encodeMstNode, type MstNode } from "../../src/protocol/mst-node";
import { loadCapturedFrames } from "../fixtures/captured";
import { readInteropJson } from "../support/interop";
import { errorName } from "../support/protocol-errors";

// The hand-written MST node codec must agree byte for byte with the general strict DAG-CBOR
// codec: same values decoded, same bytes encoded, and anything off the canonical layout decided
// by the general decoder.

function isNode(value: unknown): value is MstNode {
  return typeof value === "object" && value !== null && Array.isArray((value as MstNode).e);
}

/** Every MST node block of the captured commits, and the nodes of trees built from the vectors. */
function nodeBlocks(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const captured of loadCapturedFrames()) {
    const frame = decodeFrame(captured.bytes);
    if (frame.kind !== "commit") continue;
    for (const bytes of readCar(frame.body.blocks).blocks.values()) {
      try {
        if (isNode(decodeDagCbor(bytes))) out.push(bytes);
      } catch {
        // not DAG-CBOR (none here, but a raw block would be)
      }
    }
  }
  type Proof = { leafValue: string; keys: string[] };
  for (const p of readInteropJson<Proof[]>("firehose", "commit-proof-fixtures.json")) {
    const value = CID.parse(p.leafValue);
    const blocks = new Map<string, Uint8Array>();
    mstRoot(leavesOf(p.keys.map((k) => [k, value] as [string, CID])), blocks);
    out.push(...blocks.values());
  }
  return out;
}

/** Bytes compared as hex: cborg returns a Buffer in Node, the node codec a Uint8Array. */
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const general = (bytes: Uint8Array) => decodeDagCbor(bytes) as MstNode;

describe("MST node codec", () => {
  const blocks = nodeBlocks();

  it("decodes and re-encodes every node as the general codec does", () => {
    expect(blocks.length).toBeGreaterThan(100);
    for (const bytes of blocks) {
      const fast = decodeMstNode(bytes);
      expect(hex(encodeDagCbor(fast))).toBe(hex(bytes));
      expect(hex(encodeDagCbor(fast))).toBe(hex(encodeDagCbor(general(bytes))));
      expect(hex(encodeMstNode(fast))).toBe(hex(bytes));
      expect(hex(encodeMstNode(general(bytes)))).toBe(hex(encodeDagCbor(general(bytes))));
    }
  });

  it("encodes long keys, large prefixes and many entries like the general encoder", () => {
    const v = CID.parse("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");
    const e = Array.from({ length: 300 }, (_, i) => ({
      k: new Uint8Array(i * 3).fill(97),
      p: i * 1000,
      v,
      t: i % 2 ? v : null,
    }));
    const node = { l: v, e };
    expect(hex(encodeMstNode(node))).toBe(hex(encodeDagCbor(node)));
    expect(hex(encodeDagCbor(decodeMstNode(encodeMstNode(node))))).toBe(hex(encodeDagCbor(node)));
  });

  it("leaves every other layout to the general decoder, which decides as before", () => {
    const bytes = blocks[0] as Uint8Array;
    // a non-minimal array head for `e`: general decoding rejects it
    const nonMinimal = new Uint8Array([bytes[0] as number, bytes[1] as number, bytes[2] as number]);
    const count = (bytes[3] as number) & 0x1f;
    const rebuilt = new Uint8Array([...nonMinimal, 0x98, count, ...bytes.subarray(4)]);
    expect(errorName(() => decodeMstNode(rebuilt))).toBe(errorName(() => decodeDagCbor(rebuilt)));
    expect(errorName(() => decodeMstNode(rebuilt))).toBe("NonCanonicalCbor");
    // an extra key the node layout does not have: accepted by the general path, as before
    const node = general(bytes);
    const extra = encodeDagCbor({ ...node, x: 1 });
    expect(hex(encodeDagCbor(decodeMstNode(extra)))).toBe(hex(encodeDagCbor(node)));
    // truncated: rejected
    expect(errorName(() => decodeMstNode(bytes.subarray(0, bytes.length - 1)))).toBe(
      errorName(() => decodeDagCbor(bytes.subarray(0, bytes.length - 1))),
    );
    // a link that is not a CID: rejected by the general path's shape check
    const badLink = encodeDagCbor({ e: node.e, l: new Uint8Array([1, 2]) });
    expect(errorName(() => decodeMstNode(badLink))).toBe("InvalidMstProof");
    // trailing bytes
    expect(errorName(() => decodeMstNode(new Uint8Array([...bytes, 0])))).toBe("TrailingBytes");
  });
});
