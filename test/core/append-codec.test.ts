import { describe, expect, it } from "vitest";
import type { AppendResult } from "../../src/sequence/append-codec";
import {
  decodeFrame,
  encodeBatch,
  encodeDelivery,
  encodeError,
  encodeRelayLost,
  encodeRelayRefused,
  encodeResult,
} from "../../src/sequence/append-codec";

// The append socket's frames (src/sequence/append-codec.ts): what one end encodes, the other
// decodes to the same value, and a damaged frame is refused rather than misread.

function bytes(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

describe("append codec", () => {
  it("round-trips a batch: hosts, seqs past 2^32, DIDs, frames and reset epochs", () => {
    const batch = {
      events: [
        { host: "a.example", upstreamSeq: 1, did: "did:plc:aaa", frame: bytes(10, 1) },
        {
          host: "b.example",
          upstreamSeq: 2 ** 40 + 7,
          did: "did:web:b.example",
          frame: bytes(0, 0),
        },
        { host: "a.example", upstreamSeq: 2, did: "did:plc:ééé", frame: bytes(70_000, 9) },
      ],
      hostEpochs: { "a.example": 3, "c.example": 0 },
    };
    const decoded = decodeFrame(encodeBatch(42, batch));
    expect(decoded).toEqual({ kind: "batch", id: 42, batch });
  });

  it("round-trips a backlog-sized batch exactly, with no byte after the last field", () => {
    const events = Array.from({ length: 400 }, (_, i) => ({
      host: `pds${i % 3}.example:2583`,
      upstreamSeq: i + 1,
      did: `did:plc:${String(i).padStart(24, "a")}`,
      frame: bytes(1_000 + (i % 7) * 300, i % 251),
    }));
    const batch = { events, hostEpochs: { "pds1.example:2583": 2 } };
    const encoded = encodeBatch(9, batch);
    expect(decodeFrame(encoded)).toEqual({ kind: "batch", id: 9, batch });
    // the decoder refuses trailing bytes: one more must fail, so the frame ends where it should
    const longer = new Uint8Array(encoded.byteLength + 1);
    longer.set(encoded);
    expect(() => decodeFrame(longer)).toThrow();
  });

  it("round-trips a batch without epochs (none in the decoded batch either)", () => {
    const batch = { events: [{ host: "h", upstreamSeq: 5, did: "did:plc:x", frame: bytes(3, 2) }] };
    const decoded = decodeFrame(encodeBatch(1, batch));
    expect(decoded).toEqual({ kind: "batch", id: 1, batch });
    expect("hostEpochs" in (decoded.kind === "batch" ? decoded.batch : {})).toBe(false);
  });

  it("round-trips results, null seqs included, and errors", () => {
    const result: AppendResult = {
      accepted: 3,
      duplicates: 2,
      firstSeq: 2 ** 35,
      lastSeq: 2 ** 35 + 2,
      hostCursors: { "a.example": 9, "b.example": 2 ** 41 },
      dropped: [{ host: "a.example", upstreamSeq: 8, reason: "RepoTakendown" }],
    };
    expect(decodeFrame(encodeResult(7, result))).toEqual({ kind: "result", id: 7, result });
    const empty: AppendResult = {
      accepted: 0,
      duplicates: 4,
      firstSeq: null,
      lastSeq: null,
      hostCursors: {},
      dropped: [],
    };
    expect(decodeFrame(encodeResult(2 ** 32 - 1, empty))).toEqual({
      kind: "result",
      id: 2 ** 32 - 1,
      result: empty,
    });
    expect(decodeFrame(encodeError(3, "boom"))).toEqual({ kind: "error", id: 3, message: "boom" });
  });

  it("round-trips a delivery to relay (records passed on as they are) and a relay refusal", () => {
    const delivery = {
      fanouts: ["fanout-weur-0", "fanout-0"],
      records: bytes(5000, 7),
      firstSeq: 2 ** 34,
      lastSeq: 2 ** 34 + 40,
      // two rows: the time anchors travel with the records
      anchors: [
        { firstSeq: 2 ** 34, firstUs: 1_764_400_000_000_000 },
        { firstSeq: 2 ** 34 + 25, firstUs: 1_764_400_000_080_000 },
      ],
    };
    expect(decodeFrame(encodeDelivery(delivery))).toEqual({ kind: "delivery", delivery });
    expect(decodeFrame(encodeRelayRefused("fanout-0"))).toEqual({
      kind: "relayRefused",
      fanout: "fanout-0",
    });
    expect(decodeFrame(encodeRelayLost("fanout-1"))).toEqual({
      kind: "relayLost",
      fanout: "fanout-1",
    });
  });

  it("refuses truncated, padded and unknown frames", () => {
    const frame = encodeBatch(1, {
      events: [{ host: "h", upstreamSeq: 5, did: "did:plc:x", frame: bytes(30, 2) }],
    });
    for (let cut = 0; cut < frame.byteLength; cut++)
      expect(() => decodeFrame(frame.subarray(0, cut))).toThrow(RangeError);
    const padded = new Uint8Array(frame.byteLength + 1);
    padded.set(frame);
    expect(() => decodeFrame(padded)).toThrow(RangeError);
    const unknown = frame.slice();
    unknown[0] = 9;
    expect(() => decodeFrame(unknown)).toThrow(RangeError);
  });
});
