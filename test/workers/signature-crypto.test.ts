import { describe, expect, it } from "vitest";
import { type PublicKey, parseDidKey } from "../../src/protocol/did-key";
import { verifySignature, verifySignatureAsync } from "../../src/protocol/signature";
import fixtures from "../fixtures/interop/crypto/signature-fixtures.json";

// The signature backends inside workerd, as the ingester runs them: libsecp256k1 loaded from the
// WebAssembly module bundled with the Worker, P-256 through workerd's WebCrypto (which accepts
// high-S signatures, so the official high-S vectors check our own low-S rule here).

const b64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

const verifiers = [
  [
    "verifySignature",
    async (k: PublicKey, m: Uint8Array, s: Uint8Array) => verifySignature(k, m, s),
  ],
  ["verifySignatureAsync", verifySignatureAsync],
] as const;

describe.each(verifiers)("official signature vectors in workerd: %s", (_name, verify) => {
  it.each(fixtures.map((f) => [f.comment, f] as const))("%s", async (_c, f) => {
    const key = parseDidKey(f.publicKeyDid);
    const message = b64(f.messageBase64);
    const signature = b64(f.signatureBase64);
    // first sight of the key, then its cached form
    expect(await verify(key, message, signature)).toBe(f.validSignature);
    expect(await verify(key, message, signature)).toBe(f.validSignature);
    const flipped = signature.slice();
    flipped[5] = (flipped[5] as number) ^ 1;
    expect(await verify(key, message, flipped)).toBe(false);
  });
});
