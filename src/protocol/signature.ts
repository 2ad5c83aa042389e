import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { PublicKey } from "./did-key";

// atproto signatures are ECDSA over sha256 of the message, in 64-byte compact form (r || s),
// and must be "low-S" (s <= n/2) so each signature has one valid encoding. DER is not accepted.
// noble's verify hashes with sha256 (prehash) and requires low-S by default; we pass both
// explicitly because they are the protocol rule, not a library default.

const COMPACT_SIGNATURE_BYTES = 64;
const VERIFY_OPTIONS = { prehash: true, lowS: true, format: "compact" } as const;

/** True only for a valid low-S compact signature of `message` by `key`. Never throws. */
export function verifySignature(
  key: PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (signature.byteLength !== COMPACT_SIGNATURE_BYTES) return false;
  try {
    const curve = key.curve === "secp256k1" ? secp256k1 : p256;
    return curve.verify(signature, message, key.compressed, VERIFY_OPTIONS);
  } catch {
    return false;
  }
}
