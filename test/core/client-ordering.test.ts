import { describe, expect, it } from "vitest";
import { mapOrdered } from "../../src/client/ordered";
import { ReplayGapError, SeqOrder } from "../../src/client/seq-order";

async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("mapOrdered (parallel downloads, ordered results)", () => {
  it("yields results in source order although they finish in another order", async () => {
    const finished: number[] = [];
    const out: number[] = [];
    // later items finish first
    for await (const n of mapOrdered(
      from([0, 1, 2, 3, 4, 5, 6, 7]),
      async (n) => {
        await sleep((8 - n) * 5);
        finished.push(n);
        return n;
      },
      4,
    )) {
      out.push(n);
    }
    expect(out).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(finished).not.toEqual(out);
  });

  it("keeps at most `parallelism` calls in flight, and uses them all", async () => {
    let inFlight = 0;
    let most = 0;
    for await (const _ of mapOrdered(
      from(Array.from({ length: 20 }, (_, i) => i)),
      async (n) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(2 + (n % 3) * 3);
        inFlight--;
        return n;
      },
      3,
    )) {
      // consumed as they come
    }
    expect(most).toBe(3);
  });

  it("reports a failure in its turn, after the results before it", async () => {
    const out: number[] = [];
    const run = async () => {
      for await (const n of mapOrdered(
        from([0, 1, 2, 3]),
        async (n) => {
          // the failing item finishes first
          await sleep(n === 2 ? 1 : 20);
          if (n === 2) throw new Error("download 2 failed");
          return n;
        },
        4,
      ))
        out.push(n);
    };
    await expect(run()).rejects.toThrow("download 2 failed");
    expect(out).toEqual([0, 1]);
  });

  it("stops taking items from the source when the consumer stops", async () => {
    let taken = 0;
    async function* counting(): AsyncGenerator<number> {
      for (let i = 0; i < 100; i++) {
        taken++;
        yield i;
      }
    }
    for await (const n of mapOrdered(counting(), async (n) => n, 2)) if (n === 5) break;
    expect(taken).toBeLessThanOrEqual(8);
  });
});

describe("SeqOrder (hand-over dedupe, gap detection)", () => {
  it("drops seqs at or below the last one yielded", () => {
    const order = new SeqOrder(10);
    expect([9, 10, 11, 12, 11, 12, 13].map((s) => order.admit(s, "test"))).toEqual([
      false,
      false,
      true,
      true,
      false,
      false,
      true,
    ]);
    expect(order.last).toBe(13);
  });

  it("lets the first event start past the cursor (window or FIRST_SEQ), then requires +1", () => {
    const order = new SeqOrder(0);
    expect(order.admit(20_000_000_000, "test")).toBe(true);
    expect(order.admit(20_000_000_001, "test")).toBe(true);
    expect(() => order.admit(20_000_000_003, "subscribeRepos")).toThrow(ReplayGapError);
    try {
      order.admit(20_000_000_005, "subscribeRepos");
    } catch (err) {
      expect(err).toMatchObject({ lastSeq: 20_000_000_001, receivedSeq: 20_000_000_005 });
    }
    // a gap is not recorded as progress
    expect(order.last).toBe(20_000_000_001);
  });
});
