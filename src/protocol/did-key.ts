import { base58btc } from "multiformats/bases/base58";
import { ProtocolError } from "./errors";
import { p256CompressedPoint } from "./p256-point";
import { compressSec1 } from "./sec1";
import { keepPoint } from "./secp256k1-points";
import { secp256k1Wasm } from "./secp256k1-wasm";

// atproto signing keys are secp256k1 ("k256") or NIST P-256, published as `did:key:z...` or as a
// Multikey `publicKeyMultibase` (multicodec-prefixed compressed point). The older DID-document
// form (`EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`, still served by
// the local PLC of @atproto/dev-env) has no multicodec prefix and may be an uncompressed point.

export type Curve = "secp256k1" | "p256";

export type PublicKey = {
  curve: Curve;
  /** 33-byte SEC1 compressed point. */
  compressed: Uint8Array;
};

const SECP256K1_PUB_PREFIX = [0xe7, 0x01];
const P256_PUB_PREFIX = [0x80, 0x24];
const DID_KEY_PREFIX = "did:key:";

/** A key from a point (compressed or uncompressed), validated on its curve, or null. */
function publicKeyOrNull(curve: Curve, point: Uint8Array): PublicKey | null {
  switch (curve) {
    // libsecp256k1 parses a key ~4x faster than @noble/curves (~130 µs here): every DID
    // document the relay resolves or reloads pays this once. It is asked for the uncompressed
    // form, which the key's signatures are then verified against (secp256k1-points.ts).
    case "secp256k1": {
      const uncompressed = secp256k1Wasm.uncompressed(point);
      if (!uncompressed) return null;
      const key: PublicKey = { curve, compressed: compressSec1(uncompressed) };
      keepPoint(key, uncompressed);
      return key;
    }
    // the curve check without a square root: 17–22 µs a key against 62–87 for @noble/curves'
    // fromBytes (p256-point.ts)
    case "p256": {
      const compressed = p256CompressedPoint(point);
      return compressed ? { curve, compressed } : null;
    }
    default: {
      const unreachable: never = curve;
      throw new Error(`unknown curve ${String(unreachable)}`);
    }
  }
}

function publicKey(curve: Curve, point: Uint8Array): PublicKey {
  const key = publicKeyOrNull(curve, point);
  if (!key) throw new ProtocolError("InvalidKey", `not a valid ${curve} public key`);
  return key;
}

/** Validates a point on the curve and returns its compressed form. */
export function compressPoint(curve: Curve, point: Uint8Array): Uint8Array {
  return publicKey(curve, point).compressed;
}

function decodeBase58Multibase(multibase: string): Uint8Array {
  if (!multibase.startsWith("z"))
    throw new ProtocolError("InvalidKey", "key multibase must be base58btc (z...)");
  try {
    return base58btc.decode(multibase);
  } catch (err) {
    throw new ProtocolError("InvalidKey", "key multibase is not valid base58btc", { cause: err });
  }
}

function hasPrefix(bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

/** Parses a Multikey `publicKeyMultibase` (multicodec-prefixed key). */
export function parseMultikey(multibase: string): PublicKey {
  const bytes = decodeBase58Multibase(multibase);
  if (hasPrefix(bytes, SECP256K1_PUB_PREFIX)) return publicKey("secp256k1", bytes.subarray(2));
  if (hasPrefix(bytes, P256_PUB_PREFIX)) return publicKey("p256", bytes.subarray(2));
  throw new ProtocolError("InvalidKey", "unsupported multicodec key type");
}

/** Parses `did:key:z...`. */
export function parseDidKey(didKey: string): PublicKey {
  if (!didKey.startsWith(DID_KEY_PREFIX)) throw new ProtocolError("InvalidKey", "not a did:key");
  return parseMultikey(didKey.slice(DID_KEY_PREFIX.length));
}

/** Parses the legacy verification-method form: a bare (possibly uncompressed) point. */
export function parseLegacyMultibaseKey(curve: Curve, multibase: string): PublicKey {
  return publicKey(curve, decodeBase58Multibase(multibase));
}

/** Formats a key as `did:key:z...` (multicodec-prefixed compressed point). */
export function formatDidKey(key: PublicKey): string {
  const prefix = key.curve === "secp256k1" ? SECP256K1_PUB_PREFIX : P256_PUB_PREFIX;
  const bytes = new Uint8Array(prefix.length + key.compressed.length);
  bytes.set(prefix, 0);
  bytes.set(key.compressed, prefix.length);
  return DID_KEY_PREFIX + base58btc.encode(bytes);
}
