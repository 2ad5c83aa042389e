import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { Curve, PublicKey } from "./did-key";
import { verifyP256Noble } from "./p256-noble";
import { verifyP256WebCrypto } from "./p256-webcrypto";
import { keepPoint, keptPoint } from "./secp256k1-points";
import { secp256k1Wasm } from "./secp256k1-wasm";
import { sha256 } from "./sha256";

// atproto signatures are ECDSA over sha256 of the message, in 64-byte compact form (r || s),
// and must be "low-S" (s <= n/2) so each signature has one valid encoding; DER is not accepted
// (atproto cryptography spec). The range and low-S rules are checked here, once, before any
// backend sees the signature: WebCrypto accepts high-S signatures, so this check is the rule.
//
// Signature checks bound how fast a relay validates (docs/benchmarks.md). Backends:
// - secp256k1 (most accounts): libsecp256k1 compiled to WebAssembly (secp256k1-wasm.ts), ~5x
//   @noble/curves; the key's uncompressed form is kept per PublicKey object
//   (secp256k1-points.ts), which saves the square root of parsing a compressed point on every
//   signature of that account.
// - P-256: WebCrypto (p256-webcrypto.ts, asynchronous) for `verifySignatureAsync`, the
//   ingester's path; @noble/curves (p256-noble.ts) for the synchronous `verifySignature`.
// Keys are cached per PublicKey object (WeakMaps), so a key is as long-lived as the parsed DID
// document holding it (the ingester's identity cache bounds how many there are).

const COMPACT_SIGNATURE_BYTES = 64;
const SCALAR_BYTES = 32;

function scalarBytes(n: bigint): Uint8Array {
  const hex = n.toString(16).padStart(SCALAR_BYTES * 2, "0");
  const out = new Uint8Array(SCALAR_BYTES);
  for (let i = 0; i < SCALAR_BYTES; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

type ScalarBounds = { order: Uint8Array; halfOrder: Uint8Array };

const BOUNDS: Record<Curve, ScalarBounds> = {
  secp256k1: {
    order: scalarBytes(secp256k1.Point.Fn.ORDER),
    halfOrder: scalarBytes(secp256k1.Point.Fn.ORDER >> 1n),
  },
  p256: {
    order: scalarBytes(p256.Point.Fn.ORDER),
    halfOrder: scalarBytes(p256.Point.Fn.ORDER >> 1n),
  },
};

/** Compares the 32-byte big-endian scalar at `signature[offset..]` with `bound`. */
function compareScalar(signature: Uint8Array, offset: number, bound: Uint8Array): number {
  for (let i = 0; i < SCALAR_BYTES; i++) {
    const a = signature[offset + i] as number;
    const b = bound[i] as number;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

function isZeroScalar(signature: Uint8Array, offset: number): boolean {
  for (let i = 0; i < SCALAR_BYTES; i++) if (signature[offset + i] !== 0) return false;
  return true;
}

/** A compact signature with 0 < r < n and 0 < s <= n/2 (low-S). */
function isCanonicalCompact(curve: Curve, signature: Uint8Array): boolean {
  if (signature.byteLength !== COMPACT_SIGNATURE_BYTES) return false;
  const { order, halfOrder } = BOUNDS[curve];
  if (isZeroScalar(signature, 0) || compareScalar(signature, 0, order) >= 0) return false;
  if (isZeroScalar(signature, SCALAR_BYTES)) return false;
  return compareScalar(signature, SCALAR_BYTES, halfOrder) <= 0;
}

/** Marks a key used once: its point is parsed from the compressed form inside `verify`. */
const USED_ONCE = new Uint8Array(0);

function verifySecp256k1(key: PublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  // a key parsed from a DID document comes with its uncompressed point (secp256k1-points.ts)
  let point = keptPoint(key);
  if (point === undefined) {
    // any other key: its first signature is checked against the compressed point as it is
    // (decompressing it apart first costs an extra call and copy, ~5 % of a first-sight event);
    // the uncompressed form is kept from the second signature on, when the key proves reused
    keepPoint(key, USED_ONCE);
    return secp256k1Wasm.verify(sha256(message), key.compressed, signature);
  }
  if (point === USED_ONCE) {
    point = secp256k1Wasm.uncompressed(key.compressed);
    keepPoint(key, point);
  }
  if (point === null) return false;
  return secp256k1Wasm.verify(sha256(message), point, signature);
}

/**
 * True only for a valid low-S compact signature of `message` by `key`. Never throws.
 * Synchronous: P-256 is verified in JavaScript. Prefer `verifySignatureAsync` where the caller
 * can await (P-256 through WebCrypto is ~10x faster).
 */
export function verifySignature(
  key: PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!isCanonicalCompact(key.curve, signature)) return false;
  switch (key.curve) {
    case "secp256k1":
      return verifySecp256k1(key, message, signature);
    case "p256":
      return verifyP256Noble(key.compressed, message, signature);
    default: {
      const unreachable: never = key.curve;
      throw new Error(`unknown curve ${String(unreachable)}`);
    }
  }
}

/** As `verifySignature`, with P-256 verified by the runtime's WebCrypto. Never rejects. */
export async function verifySignatureAsync(
  key: PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (!isCanonicalCompact(key.curve, signature)) return false;
  switch (key.curve) {
    case "secp256k1":
      return verifySecp256k1(key, message, signature);
    case "p256":
      return verifyP256WebCrypto(key, key.compressed, message, signature);
    default: {
      const unreachable: never = key.curve;
      throw new Error(`unknown curve ${String(unreachable)}`);
    }
  }
}
