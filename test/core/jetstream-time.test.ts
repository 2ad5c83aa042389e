import { describe, expect, it } from "vitest";
import { hotRowsAnchor, receivedAnchor, segmentAnchor } from "../../src/jetstream/time";

describe("time_us anchors", () => {
  it("hot rows: the row's commit time plus the place in the row, below the next millisecond", () => {
    const at = hotRowsAnchor([
      { firstSeq: 10, ms: 1000 },
      { firstSeq: 2000, ms: 1001 },
    ]);
    expect(at(10)).toBe(1_000_000);
    expect(at(11)).toBe(1_000_001);
    expect(at(1999)).toBe(1_000_999);
    expect(at(2000)).toBe(1_001_000);
  });

  it("segments: linear from the first to the last commit time, never past it", () => {
    const at = segmentAnchor({ firstSeq: 101, lastSeq: 201, firstMs: 5000, lastMs: 6000 });
    expect(at(101)).toBe(5_000_000);
    expect(at(151)).toBe(5_500_000);
    expect(at(201)).toBe(6_000_000);
    let previous = 0;
    for (let seq = 101; seq <= 201; seq++) {
      expect(at(seq)).toBeGreaterThanOrEqual(previous);
      previous = at(seq);
    }
    const single = segmentAnchor({ firstSeq: 7, lastSeq: 7, firstMs: 9, lastMs: 9 });
    expect(single(7)).toBe(9000);
  });

  it("live batches: the receive time plus the place in the batch", () => {
    const at = receivedAnchor(50, 2000);
    expect(at(50)).toBe(2_000_000);
    expect(at(52)).toBe(2_000_002);
    expect(at(5000)).toBe(2_000_999);
  });
});
