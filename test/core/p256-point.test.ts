import { p256 } from "@noble/curves/nist.js";
import { describe, expect, it } from "vitest";
import { compressPoint, formatDidKey, parseDidKey } from "../../src/protocol/did-key";
import { ProtocolError } from "../../src/protocol/errors";
import { p256CompressedPoint } from "../../src/protocol/p256-point";

// P-256 points are parsed without a square root (src/protocol/p256-point.ts). It must accept and
// compress exactly what @noble/curves' Point.fromBytes does: the oracle here, on valid keys in
// both encodings, x values off the curve, coordinates out of the field, and damaged encodings.

const P = p256.Point.Fp.ORDER;

function nobleCompressed(point: Uint8Array): Uint8Array | null {
  try {
    return p256.Point.fromBytes(point).toBytes(true);
  } catch {
    return null;
  }
}

/** 32 big-endian bytes of 0 ≤ n < 2^256, whether or not n is a field element. */
function be32(n: bigint): Uint8Array {
  const hex = n.toString(16).padStart(64, "0");
  return Uint8Array.from({ length: 32 }, (_, i) =>
    Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
}

function xBytes(x: bigint, prefix: number): Uint8Array {
  return Uint8Array.of(prefix, ...be32(x));
}

/** A deterministic stream of 32-byte values (xorshift), so a failure can be replayed. */
function* pseudoRandomBytes(seed: number): Generator<Uint8Array> {
  let state = seed;
  for (;;) {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      out[i] = state & 0xff;
    }
    yield out;
  }
}

describe("P-256 point parsing", () => {
  it("accepts valid keys, compressed and uncompressed, as noble does", () => {
    for (let i = 0; i < 200; i++) {
      const secret = p256.utils.randomSecretKey();
      const compressed = p256.getPublicKey(secret, true);
      const uncompressed = p256.getPublicKey(secret, false);
      expect(p256CompressedPoint(compressed)).toEqual(compressed);
      expect(p256CompressedPoint(uncompressed)).toEqual(compressed);
    }
  });

  it("agrees with noble on arbitrary x values, about half of which are on the curve", () => {
    const values = pseudoRandomBytes(0x5eed);
    let onCurve = 0;
    for (let i = 0; i < 400; i++) {
      const point = new Uint8Array(33);
      point[0] = i % 2 === 0 ? 0x02 : 0x03;
      point.set(values.next().value as Uint8Array, 1);
      const expected = nobleCompressed(point);
      expect(p256CompressedPoint(point)).toEqual(expected);
      if (expected) onCurve++;
    }
    expect(onCurve).toBeGreaterThan(120);
    expect(onCurve).toBeLessThan(280);
  });

  it("refuses what noble refuses: x or y out of the field, off the curve, bad prefix or length", () => {
    const valid = p256.getPublicKey(p256.utils.randomSecretKey(), false);
    const wrongY = valid.slice();
    wrongY[64] = (wrongY[64] as number) ^ 1;
    // y = p: not a field element (y + p would be the same residue, but rarely fits in 32 bytes)
    const yIsP = Uint8Array.of(...valid.subarray(0, 33), ...be32(P));
    const cases: Uint8Array[] = [
      xBytes(P, 0x02), // x = p
      xBytes(P + 1n, 0x03), // x > p
      xBytes(2n ** 256n - 1n, 0x02),
      xBytes(0n, 0x02),
      xBytes(1n, 0x03),
      xBytes(3n, 0x02),
      wrongY,
      yIsP,
      valid.subarray(0, 64),
      new Uint8Array(65), // (0, 0): not on the curve
      Uint8Array.of(0x00),
      new Uint8Array(0),
      Uint8Array.of(0x05, ...valid.subarray(1, 33)),
      Uint8Array.of(0x04, ...valid.subarray(1, 33)), // 33 bytes with the uncompressed prefix
      Uint8Array.of(0x02, ...valid.subarray(1, 65)), // 65 bytes with a compressed prefix
      Uint8Array.of(0x06, ...valid.subarray(1, 65)), // hybrid form
    ];
    for (const point of cases) expect(p256CompressedPoint(point)).toEqual(nobleCompressed(point));
    expect(p256CompressedPoint(wrongY)).toBeNull();
    expect(p256CompressedPoint(yIsP)).toBeNull();
    expect(p256CompressedPoint(xBytes(P, 0x02))).toBeNull();
  });

  it("gives did:key parsing the same keys and the same InvalidKey refusals", () => {
    const secret = p256.utils.randomSecretKey();
    const compressed = p256.getPublicKey(secret, true);
    const didKey = formatDidKey({ curve: "p256", compressed });
    expect(parseDidKey(didKey)).toEqual({ curve: "p256", compressed });
    expect(compressPoint("p256", p256.getPublicKey(secret, false))).toEqual(compressed);
    let offCurve = xBytes(P, 0x02);
    for (const value of pseudoRandomBytes(7)) {
      offCurve = Uint8Array.of(0x02, ...value);
      if (nobleCompressed(offCurve) === null) break;
    }
    expect(() => parseDidKey(formatDidKey({ curve: "p256", compressed: offCurve }))).toThrow(
      ProtocolError,
    );
  });
});
