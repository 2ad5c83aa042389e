import { createHash } from "node:crypto";
import { pointFromScalar, sign, verify } from "tiny-secp256k1";

// Prints µs per libsecp256k1 verify (tiny-secp256k1's WebAssembly, the module the relay uses) in
// this process, after a warm-up: bench/cpu-placement.ts runs it pinned to each core.
const key = new Uint8Array(32).fill(7);
const publicKey = pointFromScalar(key, true) as Uint8Array;
const hash = createHash("sha256").update("freehose").digest();
const signature = sign(hash, key);
const ROUNDS = 2_000;
for (let i = 0; i < 300; i++) verify(hash, publicKey, signature, true);
const start = performance.now();
for (let i = 0; i < ROUNDS; i++)
  if (!verify(hash, publicKey, signature, true)) throw new Error("verify failed");
console.log(Math.round(((performance.now() - start) * 1000) / ROUNDS));
