import { describe, expect, it } from "vitest";
import { exactTimes, legacySegmentTimes } from "../../src/jetstream/time";
import {
  appendAnchors,
  decodeAnchors,
  encodeAnchors,
  firstSeqAtOrAfter,
  pushAnchor,
  rowFirstUs,
  type TimeAnchor,
  timeOfSeq,
} from "../../src/log/time-anchors";

/** Times rows of the given sizes as the Sequencer does, with a clock that reads `clockMs[i]`. */
function timeRows(sizes: number[], clockMs: number[], firstSeq = 1, lastUs = 0) {
  const anchors: TimeAnchor[] = [];
  let seq = firstSeq;
  let last = lastUs;
  sizes.forEach((size, i) => {
    const firstUs = rowFirstUs(clockMs[i] as number, last);
    pushAnchor(anchors, { firstSeq: seq, firstUs });
    seq += size;
    last = firstUs + size - 1;
  });
  return { anchors, lastSeq: seq - 1, lastUs: last };
}

/** Seeded, so a failure can be replayed. */
function random(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe("time anchors: one exact time per event", () => {
  it("a row starts at the clock, its events one µs apart, and never at or before the last time", () => {
    expect(rowFirstUs(5000, 0)).toBe(5_000_000);
    // the clock has not moved, or went back: 1 µs after the last event
    expect(rowFirstUs(5000, 5_000_009)).toBe(5_000_010);
    expect(rowFirstUs(4000, 5_000_009)).toBe(5_000_010);
    const { anchors, lastSeq } = timeRows([3, 2, 4], [5000, 5000, 5001], 10);
    // rows of the same millisecond continue the previous row's µs: one anchor covers both
    expect(anchors).toEqual([
      { firstSeq: 10, firstUs: 5_000_000 },
      { firstSeq: 15, firstUs: 5_001_000 },
    ]);
    const times = [];
    for (let seq = 10; seq <= lastSeq; seq++) times.push(timeOfSeq(anchors, seq));
    expect(times).toEqual([
      5_000_000, 5_000_001, 5_000_002, 5_000_003, 5_000_004, 5_001_000, 5_001_001, 5_001_002,
      5_001_003,
    ]);
  });

  it("times strictly increase with seq whatever the clock does (seeded clocks: still, jumping, going back)", () => {
    const next = random(7);
    for (let round = 0; round < 50; round++) {
      const sizes = Array.from({ length: 40 }, () => 1 + Math.floor(next() * 1500));
      let clock = 1_700_000_000_000;
      const clockMs = sizes.map(() => {
        clock += Math.floor(next() * 7) - 3; // still, forward or back by a few ms
        return clock;
      });
      const { anchors, lastSeq } = timeRows(sizes, clockMs, 100);
      let previous = Number.NEGATIVE_INFINITY;
      const backwards: number[] = [];
      for (let seq = 100; seq <= lastSeq; seq++) {
        const us = timeOfSeq(anchors, seq);
        if (us <= previous) backwards.push(seq);
        previous = us;
      }
      expect(backwards).toEqual([]);
    }
  });

  it("maps a time to the first event at or after it: inside a row, between rows, before and after all", () => {
    const { anchors, lastSeq } = timeRows([3, 4, 2], [1000, 1005, 1005], 50);
    // seqs 50-52: 1_000_000..2, 53-58: 1_005_000..5 (two rows, one anchor)
    expect(firstSeqAtOrAfter(anchors, lastSeq, 0)).toBe(50);
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_000_000)).toBe(50);
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_000_002)).toBe(52);
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_000_003)).toBe(53); // between rows
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_004_999)).toBe(53);
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_005_004)).toBe(57);
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_005_005)).toBe(58);
    expect(firstSeqAtOrAfter(anchors, lastSeq, 1_005_006)).toBe(null);
    // every time of every event maps back to that event, and the µs after it to the next one
    const next = random(11);
    const sizes = Array.from({ length: 300 }, () => 1 + Math.floor(next() * 20));
    let clock = 2_000_000;
    const run = timeRows(
      sizes,
      sizes.map(() => (clock += Math.floor(next() * 3))),
      1,
    );
    for (let seq = 1; seq <= run.lastSeq; seq++) {
      const us = timeOfSeq(run.anchors, seq);
      expect(firstSeqAtOrAfter(run.anchors, run.lastSeq, us)).toBe(seq);
      expect(firstSeqAtOrAfter(run.anchors, run.lastSeq, us + 1)).toBe(
        seq === run.lastSeq ? null : seq + 1,
      );
    }
  });

  it("merging runs keeps the times of every seq; packing round-trips in a few bytes an anchor", () => {
    const first = timeRows([5, 5], [1000, 1003], 1);
    const second = timeRows([2, 7], [1003, 1010], first.lastSeq + 1, first.lastUs);
    const merged: TimeAnchor[] = [...first.anchors];
    appendAnchors(merged, second.anchors);
    for (let seq = 1; seq <= first.lastSeq; seq++)
      expect(timeOfSeq(merged, seq)).toBe(timeOfSeq(first.anchors, seq));
    for (let seq = first.lastSeq + 1; seq <= second.lastSeq; seq++)
      expect(timeOfSeq(merged, seq)).toBe(timeOfSeq(second.anchors, seq));
    // second's first row continued first's last (same ms): one anchor fewer
    expect(merged.length).toBe(first.anchors.length + second.anchors.length - 1);

    const next = random(3);
    const sizes = Array.from({ length: 5000 }, () => 1 + Math.floor(next() * 200));
    let clock = 1_764_000_000_000;
    const big = timeRows(
      sizes,
      sizes.map(() => (clock += 50 + Math.floor(next() * 10))),
      9_000_000_000,
    );
    const packed = encodeAnchors(big.anchors);
    expect(decodeAnchors(packed)).toEqual(big.anchors);
    expect(packed.byteLength / big.anchors.length).toBeLessThan(6);
    // a time earlier than the previous run's end (rows written before times were kept) packs too
    const odd = [
      { firstSeq: 1, firstUs: 5_000_000 },
      { firstSeq: 2000, firstUs: 5_001_000 },
    ];
    expect(decodeAnchors(encodeAnchors(odd))).toEqual(odd);
    expect(() => decodeAnchors(Uint8Array.of(9, 1))).toThrow(/format/);
  });

  it("exactTimes is the anchors' time; a segment sealed before anchors is timed linearly", () => {
    const { anchors } = timeRows([3, 3], [1000, 2000], 7);
    const at = exactTimes(anchors);
    expect([7, 8, 9, 10, 11, 12].map(at)).toEqual([
      1_000_000, 1_000_001, 1_000_002, 2_000_000, 2_000_001, 2_000_002,
    ]);

    const legacy = legacySegmentTimes({ firstSeq: 101, lastSeq: 201, firstMs: 5000, lastMs: 6000 });
    expect(legacy(101)).toBe(5_000_000);
    expect(legacy(151)).toBe(5_500_000);
    expect(legacy(201)).toBe(6_000_000);
    let previous = 0;
    for (let seq = 101; seq <= 201; seq++) {
      expect(legacy(seq)).toBeGreaterThanOrEqual(previous);
      previous = legacy(seq);
    }
    expect(legacySegmentTimes({ firstSeq: 7, lastSeq: 7, firstMs: 9, lastMs: 9 })(7)).toBe(9000);
  });
});
