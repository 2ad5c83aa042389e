import { describe, expect, it } from "vitest";
import { frameType } from "../../src/client/events";
import { parsePlan } from "../../src/client/plan";
import { httpBase, resolveUrl, wsBase } from "../../src/client/runtime";
import { segmentRecordsAfter } from "../../src/client/segment-records";
import { encodeRecords } from "../../src/log/records";
import { encodeSegment, INDEX_STRIDE } from "../../src/log/segment";
import { encodeErrorFrame, encodeFrame, encodeInfoFrame } from "../../src/protocol/frame";

const records = Array.from({ length: 5 * INDEX_STRIDE + 7 }, (_, i) => ({
  seq: 500 + i,
  frame: new Uint8Array(20 + (i % 11)).fill(i % 256),
}));
const first = 500;
const last = 500 + records.length - 1;
const segment = encodeSegment(encodeRecords(records)).bytes;

describe("segment records after a cursor", () => {
  it("trims every event at or below the cursor, from any point of the index", () => {
    for (const after of [0, 499, 500, 563, 564, 565, 640, last - 1, last, last + 10]) {
      const seqs = [...segmentRecordsAfter(segment, after, { firstSeq: first, lastSeq: last })].map(
        (r) => r.seq,
      );
      const expected = records.filter((r) => r.seq > after).map((r) => r.seq);
      expect(seqs, `after ${after}`).toEqual(expected);
    }
  });

  it("gives each frame's bytes as stored", () => {
    const got = [...segmentRecordsAfter(segment, 600)];
    expect(got[0]?.frame).toEqual(records[101]?.frame);
  });

  it("refuses a segment that is not the one the plan named, or is cut short", () => {
    expect(() => [
      ...segmentRecordsAfter(segment, 0, { firstSeq: first, lastSeq: last + 1 }),
    ]).toThrow(/plan said/);
    expect(() => [
      ...segmentRecordsAfter(segment.subarray(0, segment.byteLength - 5), 0),
    ]).toThrow();
    const bad = segment.slice();
    // corrupt the length of the first record so the walk runs into the index
    bad[11] = 0xff;
    expect(() => [...segmentRecordsAfter(bad, 0)]).toThrow();
  });
});

describe("plans", () => {
  const segment1 = {
    firstSeq: 1,
    lastSeq: 10,
    firstTime: "2026-01-01T00:00:00.000Z",
    lastTime: "2026-01-01T00:01:00.000Z",
    bytes: 1000,
    url: "/segments/00000000000000000001",
  };
  it("accepts the relay's shape and refuses overlaps and missing fields", () => {
    expect(
      parsePlan({ segments: [segment1], sealedThrough: 10, cursor: 10 }).segments,
    ).toHaveLength(1);
    expect(() =>
      parsePlan({
        segments: [segment1, { ...segment1, firstSeq: 10 }],
        sealedThrough: 10,
        cursor: 10,
      }),
    ).toThrow(/overlap/);
    expect(() =>
      parsePlan({ segments: [{ ...segment1, url: 3 }], sealedThrough: 10, cursor: 10 }),
    ).toThrow();
    expect(() => parsePlan({ segments: [] })).toThrow();
  });

  it("resolves segment urls against the relay and derives the socket's", () => {
    expect(httpBase("wss://relay.example/")).toBe("https://relay.example");
    expect(wsBase("http://127.0.0.1:8787")).toBe("ws://127.0.0.1:8787");
    expect(resolveUrl("https://relay.example/base", "/segments/1")).toBe(
      "https://relay.example/segments/1",
    );
    expect(resolveUrl("https://relay.example", "https://cdn.example/s/1")).toBe(
      "https://cdn.example/s/1",
    );
  });
});

describe("frame types without decoding bodies", () => {
  it("matches event headers and falls back to decoding others", () => {
    const body = { seq: 1, did: "did:plc:abc", time: "2026-01-01T00:00:00.000Z" };
    expect(frameType(encodeFrame({ kind: "identity", body }))).toBe("#identity");
    expect(frameType(encodeFrame({ kind: "account", body: { ...body, active: true } }))).toBe(
      "#account",
    );
    expect(frameType(encodeInfoFrame("OutdatedCursor"))).toBe("#info");
    expect(frameType(encodeErrorFrame("FutureCursor"))).toBeNull();
  });
});
