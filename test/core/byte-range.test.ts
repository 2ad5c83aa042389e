import { describe, expect, it } from "vitest";
import { parseByteRange, sliceStream } from "../../src/xrpc/byte-range";

describe("parseByteRange", () => {
  it.each([
    [null, { kind: "whole" }],
    ["", { kind: "whole" }],
    ["items=0-1", { kind: "whole" }],
    ["bytes=0-1,5-6", { kind: "whole" }],
    ["bytes=5-2", { kind: "whole" }],
    ["bytes=-", { kind: "whole" }],
    ["bytes=0-0", { kind: "range", start: 0, end: 0 }],
    ["bytes=10-19", { kind: "range", start: 10, end: 19 }],
    ["bytes=90-", { kind: "range", start: 90, end: 99 }],
    ["bytes=90-1000", { kind: "range", start: 90, end: 99 }],
    ["bytes=-10", { kind: "range", start: 90, end: 99 }],
    ["bytes=-1000", { kind: "range", start: 0, end: 99 }],
    ["bytes=100-", { kind: "unsatisfiable" }],
    ["bytes=100-200", { kind: "unsatisfiable" }],
    ["bytes=-0", { kind: "unsatisfiable" }],
  ])("%s of 100 bytes: %o", (header, expected) => {
    expect(parseByteRange(header, 100)).toEqual(expected);
  });
});

describe("sliceStream", () => {
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);

  function chunked(size: number): ReadableStream<Uint8Array> {
    let at = 0;
    return new ReadableStream({
      pull(controller) {
        if (at >= bytes.byteLength) return controller.close();
        controller.enqueue(bytes.slice(at, at + size));
        at += size;
      },
    });
  }

  it.each([1, 7, 10, 33, 100])(
    "cuts exactly [start, end] across chunks of %i bytes",
    async (size) => {
      for (const [start, end] of [
        [0, 99],
        [0, 0],
        [9, 10],
        [33, 66],
        [99, 99],
      ] as const) {
        const out = new Uint8Array(
          await new Response(sliceStream(chunked(size), start, end)).arrayBuffer(),
        );
        expect(out).toEqual(bytes.subarray(start, end + 1));
      }
    },
  );
});
