import { describe, expect, it } from "vitest";
import { newRateWindow, type PlacementPolicy, reviewPlacement } from "../../src/ingest/placement";

const policy: PlacementPolicy = {
  pinAtPerSecond: 20,
  unpinBelowPerSecond: 2,
  windowMs: 60_000,
  quietWindowsToUnpin: 3,
};

function windowWith(frames: number, startMs = 0, quietWindows = 0) {
  return { ...newRateWindow(startMs), frames, quietWindows };
}

describe("automatic placement", () => {
  it("moves a shared host to its own object after a full window at or above the threshold", () => {
    expect(reviewPlacement(windowWith(1_200), 60_000, "shared", policy).move).toBe("pin");
    expect(reviewPlacement(windowWith(1_199), 60_000, "shared", policy).move).toBe(null);
  });

  it("decides nothing on a partial window: a short burst does not move a host", () => {
    const review = reviewPlacement(windowWith(50_000), 30_000, "shared", policy);
    expect(review.move).toBe(null);
    expect(review.window.frames).toBe(50_000); // still counting
  });

  it("moves an automatically placed host back after enough quiet windows, not before", () => {
    let window = windowWith(10);
    const moves: (string | null)[] = [];
    for (let i = 1; i <= 3; i++) {
      const review = reviewPlacement(window, i * 60_000, "auto", policy);
      moves.push(review.move);
      window = { ...review.window, frames: 10 };
    }
    expect(moves).toEqual([null, null, "unpin"]);
  });

  it("a busy window resets the quiet count", () => {
    const review = reviewPlacement(windowWith(6_000, 0, 2), 60_000, "auto", policy);
    expect(review).toMatchObject({ move: null, window: { quietWindows: 0, frames: 0 } });
  });

  it("never moves a host an admin placed, and is off with a threshold of 0", () => {
    expect(reviewPlacement(windowWith(0, 0, 99), 60_000, "admin", policy).move).toBe(null);
    const off = { ...policy, pinAtPerSecond: 0 };
    expect(reviewPlacement(windowWith(1e9), 60_000, "shared", off).move).toBe(null);
  });
});
