import { createHash } from "node:crypto";
import { installedSha256, type Sha256, setSha256, sha256Js } from "./protocol/sha256";

// The relay's SHA-256 (installed by src/index.ts for the whole isolate): the runtime's native hash
// (`node:crypto`, BoringSSL in workerd with the nodejs_compat flag) for large inputs, the
// JavaScript one of src/protocol/sha256.ts for small ones. A native call costs a fixed ~3-5 µs in
// workerd (a JavaScript hasher object around a C++ one) against ~1.4 µs for a 200-byte block in
// JavaScript; native is ahead from ~600-1,000 bytes on (docs/benchmarks.md, "Validation: SHA-256
// and CIDs"). Most CAR blocks, every MST key and every signed commit are below that, so most
// calls stay in JavaScript; large records (long posts, embeds, big MST nodes) go native.
// Not in src/protocol: the client shares that code and must not import `node:crypto`.

/** Inputs from this size on are hashed natively. */
export const NATIVE_SHA256_FROM_BYTES = 768;

/** SHA-256 by `node:crypto`, as a plain Uint8Array (not a Buffer, whatever the runtime). */
export function nativeSha256(bytes: Uint8Array): Uint8Array {
  const digest = createHash("sha256").update(bytes).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/** The relay's SHA-256: native from NATIVE_SHA256_FROM_BYTES on, JavaScript below. */
export const relaySha256: Sha256 = (bytes) =>
  bytes.length >= NATIVE_SHA256_FROM_BYTES ? nativeSha256(bytes) : sha256Js(bytes);

/**
 * Installs `relaySha256` once its native path gives the JavaScript digest of a known input (a
 * runtime whose `node:crypto` misbehaves keeps the JavaScript one). Returns what is installed.
 */
export function installRelaySha256(): Sha256 {
  const probe = new Uint8Array(NATIVE_SHA256_FROM_BYTES + 5).map((_, i) => i);
  const expected = sha256Js(probe);
  let actual: Uint8Array | null = null;
  try {
    actual = nativeSha256(probe);
  } catch {
    // no native hash: stay on JavaScript
  }
  if (actual && actual.length === expected.length && actual.every((b, i) => b === expected[i]))
    setSha256(relaySha256);
  return installedSha256();
}
