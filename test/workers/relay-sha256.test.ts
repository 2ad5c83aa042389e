import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { installedSha256, sha256, sha256Js } from "../../src/protocol/sha256";
import {
  installRelaySha256,
  NATIVE_SHA256_FROM_BYTES,
  nativeSha256,
  relaySha256,
} from "../../src/relay-sha256";

// The relay's SHA-256 in workerd: the Worker's entry (src/index.ts) installs relay-sha256.ts for
// every object of the isolate, and `node:crypto` (nodejs_compat) really hashes there.

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

describe("the relay's SHA-256 in workerd", () => {
  it("is what an ingester's validation hashes with", async () => {
    const stub = env.HOST_INGESTER.get(env.HOST_INGESTER.idFromName("sha256-check"));
    const seen = await runInDurableObject(stub, () => ({
      relay: installedSha256() === relaySha256,
      javascript: installedSha256() === sha256Js,
    }));
    expect(seen).toEqual({ relay: true, javascript: false });
  });

  it("node:crypto gives the FIPS 180-4 digests, and the JavaScript one's on large inputs", () => {
    expect(hex(nativeSha256(ascii("abc")))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(hex(nativeSha256(ascii("a".repeat(1_000_000))))).toBe(
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    );
    for (const length of [NATIVE_SHA256_FROM_BYTES - 1, NATIVE_SHA256_FROM_BYTES, 5000]) {
      const input = new Uint8Array(length).map((_, i) => (i * 31 + length) & 0xff);
      expect(hex(sha256(input))).toBe(hex(sha256Js(input)));
      expect(hex(nativeSha256(input))).toBe(hex(sha256Js(input)));
    }
    expect(installRelaySha256()).toBe(relaySha256);
  });
});
