import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { afterEach, describe, expect, it } from "vitest";
import { cidForDagCbor, cidKey, cidV1String, decodeCid } from "../../src/protocol/cid";
import { parseDidKey } from "../../src/protocol/did-key";
import { mstKeyHeight } from "../../src/protocol/mst";
import { installedSha256, setSha256, sha256, sha256Js } from "../../src/protocol/sha256";
import { verifySignature } from "../../src/protocol/signature";
import {
  installRelaySha256,
  NATIVE_SHA256_FROM_BYTES,
  nativeSha256,
  relaySha256,
} from "../../src/relay-sha256";
import { readInteropJson } from "../support/interop";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const ascii = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));

/** Deterministic pseudo-random bytes (xorshift), so a failure names a reproducible input. */
function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe("sha256Js", () => {
  // FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf")
  it.each([
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
    [
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ],
    ["a".repeat(1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"],
  ])("the FIPS 180-4 example of %#", (message, digest) => {
    expect(hex(sha256Js(ascii(message)))).toBe(digest);
  });

  it("gives @noble/hashes' digest for every length around the block edges and beyond", () => {
    for (let length = 0; length <= 1100; length++) {
      const input = bytesOf(length, length + 1);
      expect(hex(sha256Js(input)), `length ${length}`).toBe(hex(nobleSha256(input)));
    }
    for (const length of [4095, 4096, 65_537, 1_000_003]) {
      const input = bytesOf(length, length);
      expect(hex(sha256Js(input)), `length ${length}`).toBe(hex(nobleSha256(input)));
    }
  });

  it("hashes a view into a larger buffer, and a Buffer, as the bytes they show", () => {
    const whole = bytesOf(300, 7);
    const view = whole.subarray(17, 250);
    expect(hex(sha256Js(view))).toBe(hex(nobleSha256(view.slice())));
    expect(hex(sha256Js(Buffer.from(view)))).toBe(hex(nobleSha256(view.slice())));
  });
});

describe("the injectable SHA-256", () => {
  afterEach(() => setSha256(sha256Js));

  it("is the JavaScript one unless a runtime installs another", () => {
    expect(installedSha256()).toBe(sha256Js);
  });

  it("hashes through whatever is installed (CIDs, MST key heights)", () => {
    const seen: number[] = [];
    setSha256((bytes) => {
      seen.push(bytes.length);
      return sha256Js(bytes);
    });
    cidForDagCbor(new Uint8Array([0xa0]));
    mstKeyHeight("app.bsky.feed.post/3jqfcqzm3fo2j");
    expect(seen).toEqual([1, 32]);
  });

  it("the relay's: node:crypto from NATIVE_SHA256_FROM_BYTES on, JavaScript below, same digests", () => {
    expect(installRelaySha256()).toBe(relaySha256);
    expect(installedSha256()).toBe(relaySha256);
    for (const length of [0, 1, 55, 56, 64, 200, 767, 768, 769, 1024, 5000]) {
      const input = bytesOf(length, 3 * length + 1);
      expect(hex(sha256(input)), `length ${length}`).toBe(hex(nobleSha256(input)));
    }
    const large = bytesOf(NATIVE_SHA256_FROM_BYTES, 5);
    expect(hex(nativeSha256(large))).toBe(hex(sha256Js(large)));
    // a plain Uint8Array, not a Buffer, like the JavaScript one
    expect(nativeSha256(large).constructor).toBe(Uint8Array);
  });
});

type DataModelFixture = { cbor_base64: string; cid: string };
type KeyHeight = { key: string; height: number };
type SignatureFixture = {
  messageBase64: string;
  publicKeyDid: string;
  signatureBase64: string;
  validSignature: boolean;
};

const b64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

describe.each([
  ["JavaScript", sha256Js],
  ["relay (node:crypto for large inputs)", relaySha256],
  ["node:crypto for every input", nativeSha256],
] as const)("interop vectors with the %s SHA-256", (_name, impl) => {
  afterEach(() => setSha256(sha256Js));

  it("gives every data-model fixture's CID", () => {
    setSha256(impl);
    for (const f of readInteropJson<DataModelFixture[]>("data-model", "data-model-fixtures.json"))
      expect(cidForDagCbor(b64(f.cbor_base64)).toString()).toBe(f.cid);
  });

  it("gives every MST key's height", () => {
    setSha256(impl);
    for (const h of readInteropJson<KeyHeight[]>("mst", "key_heights.json"))
      expect(mstKeyHeight(h.key), h.key).toBe(h.height);
  });

  it("decides every signature fixture as the vectors say", () => {
    setSha256(impl);
    for (const f of readInteropJson<SignatureFixture[]>("crypto", "signature-fixtures.json")) {
      const key = parseDidKey(f.publicKeyDid);
      expect(verifySignature(key, b64(f.messageBase64), b64(f.signatureBase64))).toBe(
        f.validSignature,
      );
    }
  });
});

describe("CID fast paths", () => {
  const cids = [0x71, 0x55].flatMap((codec) =>
    [1, 2, 3].map((seed) =>
      CID.createV1(codec, Digest.create(0x12, nobleSha256(bytesOf(seed * 10, seed)))),
    ),
  );

  it("cidV1String and cidKey give multiformats' string form", () => {
    for (const cid of cids) {
      expect(cidV1String(cid.bytes)).toBe(cid.toString());
      expect(cidKey(cid)).toBe(cid.toString());
      expect(cidKey(CID.parse(cid.toString()))).toBe(cid.toString());
    }
    // any length: the encoder is plain base32
    const odd = CID.createV1(0x71, Digest.create(0x13, bytesOf(64, 9)));
    expect(cidV1String(odd.bytes)).toBe(odd.toString());
  });

  it("decodeCid builds the same CID as CID.decode, and leaves other CIDs to it", () => {
    for (const cid of cids) {
      const fast = decodeCid(cid.bytes.slice());
      expect(fast.equals(cid)).toBe(true);
      expect(fast.toString()).toBe(cid.toString());
      expect(fast.multihash.digest).toEqual(cid.multihash.digest);
      expect(fast.multihash.bytes).toEqual(cid.multihash.bytes);
      expect(fast.bytes.constructor).toBe(Uint8Array);
      expect(decodeCid(Buffer.from(cid.bytes)).bytes.constructor).toBe(Uint8Array);
    }
    const sha512 = CID.createV1(0x71, Digest.create(0x13, bytesOf(64, 9)));
    expect(decodeCid(sha512.bytes).equals(sha512)).toBe(true);
    // 36 bytes that are not one atproto CID, and bytes that are no CID at all, throw as before
    const truncated = cids[0]?.bytes.slice(0, 35) as Uint8Array;
    expect(() => decodeCid(truncated)).toThrow();
    expect(() => decodeCid(new Uint8Array(36).fill(0xff))).toThrow();
  });
});
