import { describe, expect, it } from "vitest";
import {
  encodeRecords,
  firstRecordByteLength,
  iterateRecords,
  recordsAfter,
  splitRecords,
} from "../../src/log/records";
import {
  decodeIndex,
  decodeTrailer,
  encodeSegment,
  INDEX_STRIDE,
  seekOffset,
  segmentKey,
  TRAILER_BYTES,
  wholeRecordsPrefix,
} from "../../src/log/segment";
import { decideStreamStart, parseCursorParam } from "../../src/protocol/cursor";

const records = Array.from({ length: 300 }, (_, i) => ({
  seq: 1000 + i,
  frame: new Uint8Array(10 + (i % 7)).fill(i % 256),
}));

describe("records", () => {
  it("round-trip and slice after a seq", () => {
    const bytes = encodeRecords(records);
    expect([...iterateRecords(bytes)].map((r) => r.seq)).toEqual(records.map((r) => r.seq));
    expect([...iterateRecords(recordsAfter(bytes, 1149))][0]?.seq).toBe(1150);
    expect(recordsAfter(bytes, 5000).byteLength).toBe(0);
    const [head, rest] = splitRecords(bytes, 200);
    expect([...iterateRecords(head)].length + [...iterateRecords(rest)].length).toBe(300);
  });

  it("tell from the first header alone whether a chunk holds its whole first record", () => {
    const one = encodeRecords([{ seq: 7, frame: new Uint8Array(100) }]);
    expect(firstRecordByteLength(one)).toBe(112);
    // the start of a record cut where a hot-log row ends (the rest is in overflow rows)
    expect(firstRecordByteLength(one.subarray(0, 50))).toBe(112);
    expect(firstRecordByteLength(one.subarray(0, 11))).toBeNull();
  });
});

describe("segments", () => {
  it("keys sort by seq", () => {
    expect(segmentKey(20_000_000_000)).toBe("segments/00000000020000000000");
    expect([segmentKey(99), segmentKey(1000), segmentKey(5)].sort()).toEqual([
      segmentKey(5),
      segmentKey(99),
      segmentKey(1000),
    ]);
  });

  it("has a trailer and index that seek to any seq without reading the whole segment", () => {
    const { bytes, trailer } = encodeSegment(encodeRecords(records));
    expect(decodeTrailer(bytes.subarray(bytes.length - TRAILER_BYTES))).toEqual(trailer);
    expect(trailer).toMatchObject({ firstSeq: 1000, lastSeq: 1299, count: 300 });
    const index = decodeIndex(bytes.subarray(trailer.indexOffset, bytes.length - TRAILER_BYTES));
    expect(index.length).toBe(Math.ceil(300 / INDEX_STRIDE));
    for (const after of [999, 1000, 1063, 1064, 1200, 1298]) {
      const offset = seekOffset(index, after);
      const found = [...iterateRecords(bytes.subarray(offset, trailer.indexOffset))].find(
        (r) => r.seq > after,
      );
      expect(found?.seq).toBe(after + 1);
      // the seek lands at most one stride before the wanted record
      expect(
        after + 1 - ([...iterateRecords(bytes.subarray(offset, trailer.indexOffset))][0]?.seq ?? 0),
      ).toBeLessThan(INDEX_STRIDE);
    }
    const cut = wholeRecordsPrefix(bytes.subarray(0, 100));
    expect([...iterateRecords(cut)].length).toBeGreaterThan(0);
  });
});

describe("cursor rules", () => {
  it("parses the cursor parameter", () => {
    expect(parseCursorParam(null)).toEqual({ ok: true, cursor: null });
    expect(parseCursorParam("0")).toEqual({ ok: true, cursor: 0 });
    for (const bad of ["-1", "abc", "1.5", "1e3", "99999999999999999"])
      expect(parseCursorParam(bad).ok).toBe(false);
  });

  it("decides where a stream starts", () => {
    const bounds = { headSeq: 100, trimmedThrough: 40 };
    expect(decideStreamStart(null, bounds)).toEqual({ kind: "live", afterSeq: 100 });
    expect(decideStreamStart(100, bounds)).toEqual({
      kind: "replay",
      afterSeq: 100,
      outdated: false,
    });
    expect(decideStreamStart(101, bounds)).toEqual({ kind: "future" });
    expect(decideStreamStart(50, bounds)).toEqual({
      kind: "replay",
      afterSeq: 50,
      outdated: false,
    });
    expect(decideStreamStart(10, bounds)).toEqual({ kind: "replay", afterSeq: 40, outdated: true });
    expect(decideStreamStart(0, { headSeq: 10, trimmedThrough: 0 })).toEqual({
      kind: "replay",
      afterSeq: 0,
      outdated: false,
    });
  });
});
