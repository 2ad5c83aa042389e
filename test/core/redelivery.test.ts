import { describe, expect, it } from "vitest";
import {
  type Pending,
  REDELIVERY_FIRST_DELAY_MS,
  REDELIVERY_MAX_DELAY_MS,
  redeliveryDelayMs,
  requeueFailed,
} from "../../src/fanout/redelivery";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("redeliveryDelayMs", () => {
  it("starts at the first delay, doubles with each failure in a row, and stops at the cap", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 100, 10_000].map(redeliveryDelayMs);
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000]);
    expect(delays[0]).toBe(REDELIVERY_FIRST_DELAY_MS);
    expect(Math.max(...delays)).toBe(REDELIVERY_MAX_DELAY_MS);
  });
});

describe("requeueFailed", () => {
  const failed = {
    records: bytes(10, 1),
    firstSeq: 11,
    lastSeq: 13,
    anchors: [{ firstSeq: 11, firstUs: 1_000 }],
  };

  it("alone when nothing was queued since", () => {
    const empty: Pending = { parts: [], anchors: [], bytes: 0, firstSeq: 14, lastSeq: 14 };
    expect(requeueFailed(empty, failed, 100)).toEqual({
      parts: [failed.records],
      anchors: failed.anchors,
      bytes: 10,
      firstSeq: 11,
      lastSeq: 13,
    });
  });

  it("in front of what was queued since, so the next delivery sends both in seq order", () => {
    const later = bytes(5, 2);
    const pending: Pending = {
      parts: [later],
      // a row of its own time, and one that continues it (left out once merged)
      anchors: [
        { firstSeq: 14, firstUs: 5_000 },
        { firstSeq: 15, firstUs: 5_001 },
      ],
      bytes: 5,
      firstSeq: 14,
      lastSeq: 16,
    };
    expect(requeueFailed(pending, failed, 100)).toEqual({
      parts: [failed.records, later],
      anchors: [
        { firstSeq: 11, firstUs: 1_000 },
        { firstSeq: 14, firstUs: 5_000 },
      ],
      bytes: 15,
      firstSeq: 11,
      lastSeq: 16,
    });
    // the queue's own anchors are not changed in place
    expect(pending.anchors).toHaveLength(2);
  });

  it("left out when the two would pass the byte limit: the next delivery reveals the gap", () => {
    const pending: Pending = {
      parts: [bytes(95, 2)],
      anchors: [{ firstSeq: 14, firstUs: 5_000 }],
      bytes: 95,
      firstSeq: 14,
      lastSeq: 16,
    };
    expect(requeueFailed(pending, failed, 100)).toEqual(pending);
    expect(requeueFailed(pending, failed, 105)).toMatchObject({ bytes: 105, firstSeq: 11 });
  });
});
