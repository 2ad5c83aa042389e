import { createHash } from "node:crypto";
import { createDCtx, decompressUsingDict, init } from "@bokuweb/zstd-wasm";
import { describe, expect, it } from "vitest";
import { loadJetstreamZstd } from "../../src/jetstream/zstd";
import { JETSTREAM_ZSTD_DICTIONARY } from "../../src/jetstream/zstd-dictionary";

const JETSTREAM_V1_DICT_ID = 1612007021;

/** The dictionary ID a zstd frame header names (0: none), per RFC 8878 §3.1.1.1. */
function frameDictId(frame: Uint8Array): number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  expect(view.getUint32(0, true)).toBe(0xfd2fb528);
  const descriptor = frame[4] as number;
  const singleSegment = (descriptor >> 5) & 1;
  const at = 5 + (singleSegment ? 0 : 1);
  switch (descriptor & 3) {
    case 0:
      return 0;
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at, true);
    default:
      return view.getUint32(at, true);
  }
}

describe("Jetstream's zstd dictionary", () => {
  it("is the v1 dictionary Jetstream clients ship: its header names dict ID 1612007021", () => {
    const view = new DataView(JETSTREAM_ZSTD_DICTIONARY.buffer);
    expect(JETSTREAM_ZSTD_DICTIONARY.byteLength).toBe(112_640);
    // zstd dictionary magic, then the ID (RFC 8878 §5)
    expect(view.getUint32(0, true)).toBe(0xec30a437);
    expect(view.getUint32(4, true)).toBe(JETSTREAM_V1_DICT_ID);
    expect(createHash("sha256").update(JETSTREAM_ZSTD_DICTIONARY).digest("hex")).toBe(
      "b8d77b46933aceecbdd5275a01241efc985c970c78162b8150cf67a26522f70c",
    );
  });

  it("compresses a message into one frame naming the dictionary, which another zstd decodes", async () => {
    const zstd = await loadJetstreamZstd();
    const text = JSON.stringify({
      did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
      time_us: 1732871234567890,
      kind: "commit",
      commit: {
        rev: "3lbz2x6sbk22c",
        operation: "create",
        collection: "app.bsky.feed.post",
        rkey: "3lbz2x6rxq22c",
        record: {
          $type: "app.bsky.feed.post",
          text: "héllo ✨",
          createdAt: "2024-11-29T07:00:00.000Z",
          langs: ["en"],
        },
        cid: "bafyreih4ly3mhmbkqoqqmpmbmqfjy2s6bg3n5cq5pq3nirysfwbqnqhkyi",
      },
    });
    const frame = zstd.compress(text);
    expect(frame.byteLength).toBeLessThan(new TextEncoder().encode(text).byteLength);
    expect(frameDictId(frame)).toBe(JETSTREAM_V1_DICT_ID);
    expect(zstd.decompress(frame)).toBe(text);
    // the package's own Node build, a separate instance, decodes it as a client would
    await init();
    const out = decompressUsingDict(createDCtx(), frame, JETSTREAM_ZSTD_DICTIONARY);
    expect(new TextDecoder().decode(out)).toBe(text);
  });
});
