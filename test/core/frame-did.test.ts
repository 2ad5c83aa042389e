import { describe, expect, it } from "vitest";
import { encodeDagCbor } from "../../src/protocol/cbor";
import {
  decodeFrame,
  encodeErrorFrame,
  encodeInfoFrame,
  frameDid,
  isSequencedFrame,
} from "../../src/protocol/frame";
import { peekEventDid } from "../../src/protocol/frame-did";
import { MAX_IDENTITY_FRAME_BYTES } from "../../src/protocol/limits";
import { isValidDid } from "../../src/protocol/syntax";
import { loadCapturedFrames } from "../fixtures/captured";

// The identity prefetch reads a queued frame's DID from its CBOR headers (protocol/frame-did.ts)
// instead of decoding it. It must name the same account as the full decode for every frame the
// decoder accepts, and give nothing for frames that are not events or that end early.

const captured = loadCapturedFrames();
const DID = "did:plc:framedidframedidframedid";
const TIME = "2024-01-01T00:00:00.000Z";

function frameOf(header: unknown, body: unknown): Uint8Array {
  return new Uint8Array([...encodeDagCbor(header), ...encodeDagCbor(body)]);
}

/** The decoded frame's DID, or null where decoding fails. */
function decodedDid(bytes: Uint8Array): string | null {
  try {
    const frame = decodeFrame(bytes);
    return isSequencedFrame(frame) ? frameDid(frame) : null;
  } catch {
    return null;
  }
}

/** What the prefetch looks up: a syntactically valid DID, or nothing. */
const lookedUp = (did: string | null) => (did !== null && isValidDid(did) ? did : null);

describe("peekEventDid", () => {
  it("reads the DID the decoder reads, for every frame captured from the reference PDS", () => {
    const kinds = new Set<string>();
    for (const c of captured) {
      kinds.add(c.kind);
      const decoded = decodeFrame(c.bytes);
      const expected = isSequencedFrame(decoded) ? frameDid(decoded) : null;
      expect(peekEventDid(c.bytes), `${c.file} #${c.index} (${c.kind})`).toBe(expected);
      if (expected !== null) expect(expected).toBe(c.did);
    }
    // the fixtures hold every kind of event, so each field (`repo`, `did`) is read for real
    for (const kind of ["commit", "identity", "account"]) expect(kinds).toContain(kind);
  });

  it("gives nothing for a truncated frame, and never another DID than the decoder", () => {
    const commit = captured.find((c) => c.kind === "commit")!.bytes;
    for (let length = 0; length < commit.byteLength; length++) {
      const cut = commit.subarray(0, length);
      expect(peekEventDid(cut)).toBeNull();
      expect(decodedDid(cut)).toBeNull();
    }
    // bytes flipped one at a time: where the decoder accepts the frame, the same account is
    // looked up (a DID that is not one, e.g. not ASCII, is looked up by neither)
    const flipped = new Uint8Array(commit);
    for (let i = 0; i < Math.min(commit.byteLength, 400); i++) {
      for (const mask of [0x01, 0x20, 0x80]) {
        flipped[i] = (commit[i] as number) ^ mask;
        const decoded = decodedDid(flipped);
        if (decoded !== null) expect(lookedUp(peekEventDid(flipped))).toBe(lookedUp(decoded));
        flipped[i] = commit[i] as number;
      }
    }
  });

  it("gives nothing for frames that are not events", () => {
    expect(peekEventDid(encodeErrorFrame("FutureCursor", "ahead"))).toBeNull();
    expect(peekEventDid(encodeInfoFrame("OutdatedCursor"))).toBeNull();
    const body = { seq: 1, did: DID, time: TIME };
    expect(
      peekEventDid(frameOf({ op: 1, t: "#handle" }, { ...body, handle: "a.test" })),
    ).toBeNull();
    expect(peekEventDid(frameOf({ op: 2, t: "#identity" }, body))).toBeNull();
    expect(peekEventDid(frameOf({ t: "#identity" }, body))).toBeNull();
    // the field of another type: a #commit names its account by `repo`, not `did`
    expect(peekEventDid(frameOf({ op: 1, t: "#commit" }, body))).toBeNull();
    // bytes after the body, or a DID that is not text
    const identity = frameOf({ op: 1, t: "#identity" }, body);
    expect(peekEventDid(identity)).toBe(DID);
    expect(peekEventDid(new Uint8Array([...identity, 0]))).toBeNull();
    expect(peekEventDid(frameOf({ op: 1, t: "#identity" }, { ...body, did: 7 }))).toBeNull();
  });

  it("gives nothing for a frame over its type's size limit, as the decoder refuses it", () => {
    const big = frameOf(
      { op: 1, t: "#identity" },
      { seq: 1, did: DID, time: TIME, handle: `${"a".repeat(MAX_IDENTITY_FRAME_BYTES)}.test` },
    );
    expect(decodedDid(big)).toBeNull();
    expect(peekEventDid(big)).toBeNull();
  });
});
