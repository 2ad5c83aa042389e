import { Secp256k1Keypair } from "@atproto/crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { readCar } from "../../src/protocol/car";
import { ProtocolError } from "../../src/protocol/errors";
import { checkCommitEvent } from "../../src/protocol/event-checks";
import { decodeFrame } from "../../src/protocol/frame";
import { rewriteFrameSeq } from "../../src/protocol/seq-rewrite";
import { seededRandom } from "../support/activity";
import { referenceCommits } from "../support/reference-frames";

// Thousands of random and mutated frames: the decoder and checks either accept or throw their
// own ProtocolError, never anything else, and always terminate.

let seeds: Uint8Array[] = [];

beforeAll(async () => {
  const commits = await referenceCommits(
    "did:plc:fuzzfuzzfuzzfuzzfuzzfuzz",
    await Secp256k1Keypair.create(),
    4,
    2,
  );
  seeds = commits.map((c) => c.frame);
});

function mutate(input: Uint8Array, random: () => number): Uint8Array {
  const bytes = new Uint8Array(input);
  const kind = Math.floor(random() * 5);
  const at = Math.floor(random() * bytes.length);
  switch (kind) {
    case 0:
      for (let i = 0; i < 1 + Math.floor(random() * 4); i++) {
        const p = Math.floor(random() * bytes.length);
        bytes[p] = (bytes[p] as number) ^ (1 << Math.floor(random() * 8));
      }
      return bytes;
    case 1:
      return bytes.subarray(0, at);
    case 2:
      return new Uint8Array([
        ...bytes.subarray(0, at),
        Math.floor(random() * 256),
        ...bytes.subarray(at),
      ]);
    case 3:
      return new Uint8Array([
        ...bytes.subarray(0, at),
        ...bytes.subarray(at, at + 16),
        ...bytes.subarray(at),
      ]);
    default:
      bytes[at] = Math.floor(random() * 256);
      return bytes;
  }
}

function exercise(bytes: Uint8Array): void {
  const attempt = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof ProtocolError))
        throw new Error(
          `non-protocol error ${String(err)} for ${Buffer.from(bytes).toString("hex").slice(0, 200)}`,
        );
    }
  };
  attempt(() => {
    const frame = decodeFrame(bytes);
    if (frame.kind === "commit") {
      attempt(() => readCar(frame.body.blocks));
      attempt(() => checkCommitEvent(frame.body, Date.now()));
    }
  });
  attempt(() => rewriteFrameSeq(bytes, 12345));
}

describe("fuzz", () => {
  it("survives 3,000 mutations of real frames", () => {
    const random = seededRandom(42);
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const mutated = mutate(seeds[i % seeds.length] as Uint8Array, random);
      exercise(mutated);
      try {
        decodeFrame(mutated);
        decoded++;
      } catch {
        // counted above
      }
    }
    // bit flips inside blocks bytes still decode: the corpus really exercises the checks too
    expect(decoded).toBeGreaterThan(100);
  });

  it("survives 3,000 random byte strings", () => {
    const random = seededRandom(7);
    for (let i = 0; i < 3000; i++) {
      const bytes = new Uint8Array(Math.floor(random() * 512));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      exercise(bytes);
    }
  });
});
