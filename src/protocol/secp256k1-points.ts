import type { PublicKey } from "./did-key";

// A secp256k1 key's point in uncompressed form, kept per PublicKey object. libsecp256k1 parses a
// compressed point with a square root (tens of µs in WebAssembly) and an uncompressed one with
// none, and a DID document's key is published compressed. Parsing the document validates the
// point anyway, so did-key.ts keeps the uncompressed form it gets from that check, and every
// signature of the key is verified against it (signature.ts): one square root per key, not one at
// the parse and another in the first verify. A key not made by did-key.ts gets its entry at its
// first use instead. Kept as long as the PublicKey object, whose number the ingester's identity
// cache bounds (ingest/memory-bounds.ts).

const points = new WeakMap<PublicKey, Uint8Array | null>();

/** The point kept for `key`: uncompressed (65 bytes), a marker set by the verifier, or null when
 * the key is not on the curve; undefined when nothing is kept yet. */
export function keptPoint(key: PublicKey): Uint8Array | null | undefined {
  return points.get(key);
}

export function keepPoint(key: PublicKey, point: Uint8Array | null): void {
  points.set(key, point);
}
