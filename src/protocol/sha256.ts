// SHA-256 for everything src/protocol hashes: CAR blocks against their CIDs, MST keys (a key's
// layer), the message of a commit signature. It is the largest cost of a commit's stateless
// checks after the signature, and the inputs are small (blocks of ~100-400 bytes, keys of ~30):
// per call, overhead matters more than speed per byte.
//
// Measured (docs/benchmarks.md, "Validation: SHA-256 and CIDs"): the one-shot JavaScript below,
// which allocates only its 32-byte result, takes ~1.4 µs for a 200-byte block in Node and
// workerd, against ~3 µs for @noble/hashes (a hasher object and DataViews per call); the
// runtimes' native hashes cost a fixed ~1.5 µs (Node's `crypto.hash`) to ~3-5 µs (workerd's
// `node:crypto` `createHash`, a JavaScript wrapper around BoringSSL) per call and win only from
// ~700 bytes on. So JavaScript is the default everywhere, including the client (src/client shares
// this code and may not import Node or Workers APIs); a runtime with a native hash installs it
// with `setSha256` (the relay: src/relay-sha256.ts, native for large inputs only).

/** A one-shot SHA-256: the 32-byte digest of `bytes`. */
export type Sha256 = (bytes: Uint8Array) => Uint8Array;

// FIPS 180-4, 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first
// 64 primes
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
// 5.3.3: the initial hash value
const INITIAL = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const BLOCK_BYTES = 64;
const LENGTH_FIELD_BYTES = 8;

// Working state shared by every call: a digest runs to completion synchronously, so no two calls
// ever interleave.
const W = new Int32Array(64);
const H = new Int32Array(8);
/** The last one or two blocks: the input's tail, the 0x80 marker, zeros, the bit length. */
const tail = new Uint8Array(2 * BLOCK_BYTES);

/** 6.2.2: one 64-byte block of `src` at `at` into H. */
function compress(src: Uint8Array, at: number): void {
  for (let i = 0, p = at; i < 16; i++, p += 4)
    W[i] =
      ((src[p] as number) << 24) |
      ((src[p + 1] as number) << 16) |
      ((src[p + 2] as number) << 8) |
      (src[p + 3] as number);
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15] as number;
    const w2 = W[i - 2] as number;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (s1 + (W[i - 7] as number) + s0 + (W[i - 16] as number)) | 0;
  }
  let a = H[0] as number;
  let b = H[1] as number;
  let c = H[2] as number;
  let d = H[3] as number;
  let e = H[4] as number;
  let f = H[5] as number;
  let g = H[6] as number;
  let h = H[7] as number;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + (K[i] as number) + (W[i] as number)) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = ((H[0] as number) + a) | 0;
  H[1] = ((H[1] as number) + b) | 0;
  H[2] = ((H[2] as number) + c) | 0;
  H[3] = ((H[3] as number) + d) | 0;
  H[4] = ((H[4] as number) + e) | 0;
  H[5] = ((H[5] as number) + f) | 0;
  H[6] = ((H[6] as number) + g) | 0;
  H[7] = ((H[7] as number) + h) | 0;
}

/** SHA-256 in JavaScript (FIPS 180-4), one shot; allocates only the result. */
export function sha256Js(bytes: Uint8Array): Uint8Array {
  H.set(INITIAL);
  const length = bytes.length;
  const whole = length - (length % BLOCK_BYTES);
  for (let at = 0; at < whole; at += BLOCK_BYTES) compress(bytes, at);
  // 5.1.1: padding, then the message length in bits as a 64-bit big-endian integer
  const rest = length - whole;
  tail.fill(0);
  for (let i = 0; i < rest; i++) tail[i] = bytes[whole + i] as number;
  tail[rest] = 0x80;
  const tailBytes = rest < BLOCK_BYTES - LENGTH_FIELD_BYTES ? BLOCK_BYTES : 2 * BLOCK_BYTES;
  const high = Math.floor(length / 0x20000000); // length * 8 / 2^32
  const low = (length * 8) >>> 0;
  tail[tailBytes - 8] = high >>> 24;
  tail[tailBytes - 7] = high >>> 16;
  tail[tailBytes - 6] = high >>> 8;
  tail[tailBytes - 5] = high;
  tail[tailBytes - 4] = low >>> 24;
  tail[tailBytes - 3] = low >>> 16;
  tail[tailBytes - 2] = low >>> 8;
  tail[tailBytes - 1] = low;
  compress(tail, 0);
  if (tailBytes > BLOCK_BYTES) compress(tail, BLOCK_BYTES);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const v = H[i] as number;
    out[4 * i] = v >>> 24;
    out[4 * i + 1] = v >>> 16;
    out[4 * i + 2] = v >>> 8;
    out[4 * i + 3] = v;
  }
  return out;
}

let current: Sha256 = sha256Js;

/** The SHA-256 digest of `bytes`, by the implementation installed (`sha256Js` unless set). */
export function sha256(bytes: Uint8Array): Uint8Array {
  return current(bytes);
}

/**
 * Installs the SHA-256 that `sha256` uses from now on, for the whole isolate or process. It must
 * return the same digests as `sha256Js` (the relay's is checked against it at install time).
 */
export function setSha256(impl: Sha256): void {
  current = impl;
}

/** The implementation `sha256` uses now. */
export function installedSha256(): Sha256 {
  return current;
}
