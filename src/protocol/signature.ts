import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Curve, PublicKey } from "./did-key";

// atproto signatures are ECDSA over sha256 of the message, in 64-byte compact form (r || s),
// and must be "low-S" (s <= n/2) so each signature has one valid encoding; DER is not accepted.
//
// Signature checks bound how fast a relay can validate (DESIGN.md: ~790 secp256k1 verifies/s
// per core with @noble/curves). ECDSA verification computes u1*G + u2*P; G has precomputed
// multiples, P (the account's key) does not. The same accounts sign again and again, so once a
// key has been used HOT_KEY_USES times we precompute its wNAF table too (window 6: measured
// ~3x faster verifies here, for ~28 ms once), keeping at most MAX_HOT_KEYS tables (each a few
// hundred KB) so memory stays bounded. Cold keys use noble's own Strauss-Shamir double
// multiplication. The arithmetic is noble's; only the choice of precomputation is ours.

const COMPACT_SIGNATURE_BYTES = 64;
const HOT_KEY_USES = 8;
const MAX_HOT_KEYS = 64;
const MAX_TRACKED_KEYS = 20_000;
const TABLE_WINDOW = 6;

type CurveImpl = typeof secp256k1 | typeof p256;
type Point = ReturnType<CurveImpl["Point"]["fromBytes"]>;

const CURVES: Record<Curve, CurveImpl> = { secp256k1, p256 };

type KeyState = { point: Point; uses: number; hot: boolean };

const keyStates = new Map<string, KeyState>();
const hotKeys: string[] = [];

function bytesToBigInt(bytes: Uint8Array): bigint {
  let hex = "";
  for (const b of bytes) hex += (b < 16 ? "0" : "") + b.toString(16);
  return hex.length === 0 ? 0n : BigInt(`0x${hex}`);
}

function keyId(key: PublicKey): string {
  let id = key.curve;
  for (const b of key.compressed) id += String.fromCharCode(b);
  return id;
}

function keyState(curve: CurveImpl, key: PublicKey): KeyState {
  const id = keyId(key);
  let state = keyStates.get(id);
  if (!state) {
    if (keyStates.size >= MAX_TRACKED_KEYS) {
      keyStates.clear();
      hotKeys.length = 0;
    }
    state = { point: curve.Point.fromBytes(key.compressed), uses: 0, hot: false };
    keyStates.set(id, state);
  }
  state.uses++;
  if (!state.hot && state.uses >= HOT_KEY_USES) {
    if (hotKeys.length >= MAX_HOT_KEYS) {
      const evicted = keyStates.get(hotKeys.shift() as string);
      if (evicted) {
        // a fresh point object drops the table (tables are cached per point identity)
        evicted.point = curve.Point.fromBytes(evicted.point.toBytes(true));
        evicted.hot = false;
        evicted.uses = 0;
      }
    }
    state.point.precompute(TABLE_WINDOW, false);
    state.hot = true;
    hotKeys.push(id);
  }
  return state;
}

/** True only for a valid low-S compact signature of `message` by `key`. Never throws. */
export function verifySignature(
  key: PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (signature.byteLength !== COMPACT_SIGNATURE_BYTES) return false;
  try {
    const curve = CURVES[key.curve];
    const Point = curve.Point;
    const Fn = Point.Fn;
    const n = Fn.ORDER;
    const r = bytesToBigInt(signature.subarray(0, 32));
    const s = bytesToBigInt(signature.subarray(32, 64));
    if (r <= 0n || r >= n || s <= 0n || s > n >> 1n) return false;
    const state = keyState(curve, key);
    const h = Fn.create(bytesToBigInt(sha256(message)));
    const w = Fn.inv(s);
    const u1 = Fn.mul(h, w);
    const u2 = Fn.mul(r, w);
    const R = state.hot
      ? Point.BASE.multiplyUnsafe(u1).add(state.point.multiplyUnsafe(u2))
      : Point.BASE.mulAddUnsafe(u1, state.point, u2);
    if (R.is0()) return false;
    return Fn.create(R.toAffine().x) === r;
  } catch {
    return false;
  }
}
