import { compressSec1 } from "./sec1";

// Parsing a P-256 public key (SEC1 point) without computing its y coordinate. A DID document's
// key is a 33-byte compressed point; checking that it is on the curve with @noble/curves costs a
// square root in the field (a 256-bit modular exponentiation in BigInt, ~100–150 µs), once per
// document resolved or reloaded. The relay keeps the compressed form and WebCrypto imports it as
// it is (p256-webcrypto.ts), so y is never needed: x names a point exactly when x³ − 3x + b is a
// square mod p, which the Jacobi symbol tells with a few hundred shifts and remainders on
// shrinking numbers instead. An uncompressed point is checked against the curve equation (no
// root at all) and compressed by the parity of its y.
//
// Accepts exactly what @noble/curves' `p256.Point.fromBytes` accepts (test/core/p256-point.test.ts
// compares the two on valid, invalid and edge-case points): 33 bytes with prefix 02/03 and
// x < p on the curve, or 65 bytes with prefix 04, x, y < p and y² = x³ − 3x + b. P-256's group
// has prime order (cofactor 1), so every point on the curve is in it, and no point has y = 0.

/** The field prime p = 2^256 − 2^224 + 2^192 + 2^96 − 1 (SEC 2, secp256r1). */
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
/** The curve's b (a = −3). */
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

const COORDINATE_BYTES = 32;
const COMPRESSED_BYTES = 1 + COORDINATE_BYTES;
const UNCOMPRESSED_BYTES = 1 + 2 * COORDINATE_BYTES;

function coordinate(bytes: Uint8Array, start: number): bigint {
  let hex = "0x";
  for (let i = start; i < start + COORDINATE_BYTES; i++) {
    const b = bytes[i] as number;
    hex += (b < 16 ? "0" : "") + b.toString(16);
  }
  return BigInt(hex);
}

/** x³ − 3x + b mod p, for 0 ≤ x < p. */
function curveRight(x: bigint): bigint {
  return ((((x * x - 3n) * x + B) % P) + P) % P;
}

/** The Jacobi symbol (a/n) for odd n > 0: for a prime n, 1 when a is a non-zero square mod n. */
function jacobi(a: bigint, n: bigint): number {
  let t = 1;
  a %= n;
  while (a !== 0n) {
    // strip the factors of 2 a word at a time: (2/n) = −1 when n ≡ 3, 5 (mod 8)
    let low = Number(a & 0xffffffffn);
    while (low === 0) {
      a >>= 32n; // an even number of factors of 2: the sign is unchanged
      low = Number(a & 0xffffffffn);
    }
    const zeros = 31 - Math.clz32(low & -low);
    if (zeros > 0) {
      a >>= BigInt(zeros);
      const r = n & 7n;
      if (zeros % 2 === 1 && (r === 3n || r === 5n)) t = -t;
    }
    // quadratic reciprocity: both ≡ 3 (mod 4) flips the sign
    if ((a & 3n) === 3n && (n & 3n) === 3n) t = -t;
    [a, n] = [n % a, a];
  }
  return n === 1n ? t : 0;
}

/** The 33-byte compressed form of a valid P-256 point (compressed or uncompressed), or null. */
export function p256CompressedPoint(point: Uint8Array): Uint8Array | null {
  const prefix = point[0];
  if (point.byteLength === COMPRESSED_BYTES && (prefix === 0x02 || prefix === 0x03)) {
    const x = coordinate(point, 1);
    if (x >= P) return null;
    return jacobi(curveRight(x), P) === 1 ? point.slice() : null;
  }
  if (point.byteLength === UNCOMPRESSED_BYTES && prefix === 0x04) {
    const x = coordinate(point, 1);
    const y = coordinate(point, 1 + COORDINATE_BYTES);
    if (x >= P || y >= P || (y * y) % P !== curveRight(x)) return null;
    return compressSec1(point);
  }
  return null;
}
