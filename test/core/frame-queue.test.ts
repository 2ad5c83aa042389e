import { describe, expect, it } from "vitest";
import { FrameQueue } from "../../src/ingest/frame-queue";

const frame = (n: number) => new Uint8Array([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff]);
const id = (bytes: Uint8Array | undefined) =>
  bytes ? (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8) | ((bytes[2] ?? 0) << 16) : -1;

describe("FrameQueue", () => {
  it("gives frames back oldest first, then undefined", () => {
    const queue = new FrameQueue();
    expect(queue.shift()).toBeUndefined();
    for (let i = 0; i < 3; i++) queue.push(frame(i));
    expect(queue.length).toBe(3);
    expect([id(queue.shift()), id(queue.shift()), id(queue.shift())]).toEqual([0, 1, 2]);
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it("keeps order and length across compactions while frames keep arriving", () => {
    const queue = new FrameQueue();
    let pushed = 0;
    let taken = 0;
    // more than the compaction threshold, interleaved: two in, one out, then drained
    for (let round = 0; round < 5_000; round++) {
      queue.push(frame(pushed++));
      queue.push(frame(pushed++));
      expect(id(queue.shift())).toBe(taken++);
      expect(queue.length).toBe(pushed - taken);
    }
    for (let f = queue.shift(); f; f = queue.shift()) expect(id(f)).toBe(taken++);
    expect(taken).toBe(pushed);
    expect(queue.length).toBe(0);
  });
});
