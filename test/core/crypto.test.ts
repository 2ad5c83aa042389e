import { P256Keypair, Secp256k1Keypair } from "@atproto/crypto";
import { describe, expect, it } from "vitest";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { cidForDagCbor } from "../../src/protocol/cid";
import { decodeCommit, verifyCommitSignature } from "../../src/protocol/commit";
import {
  formatDidKey,
  parseDidKey,
  parseLegacyMultibaseKey,
  parseMultikey,
} from "../../src/protocol/did-key";
import { verifySignature } from "../../src/protocol/signature";
import { readInteropJson } from "../support/interop";

type SignatureFixture = {
  comment: string;
  messageBase64: string;
  algorithm: "ES256" | "ES256K";
  didDocSuite: string;
  publicKeyDid: string;
  publicKeyMultibase: string;
  signatureBase64: string;
  validSignature: boolean;
  tags: string[];
};

const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

describe("signature fixtures (official interop vectors)", () => {
  const fixtures = readInteropJson<SignatureFixture[]>("crypto", "signature-fixtures.json");
  it.each(fixtures.map((f) => [f.comment, f] as const))("%s", (_c, f) => {
    const key = parseDidKey(f.publicKeyDid);
    expect(key.curve).toBe(f.algorithm === "ES256K" ? "secp256k1" : "p256");
    expect(verifySignature(key, b64(f.messageBase64), b64(f.signatureBase64))).toBe(
      f.validSignature,
    );
    // the same key in the DID-document form of the fixture's suite
    const legacy = parseLegacyMultibaseKey(key.curve, f.publicKeyMultibase);
    expect(Buffer.from(legacy.compressed).equals(Buffer.from(key.compressed))).toBe(true);
  });
  it("covers high-S cases", () => {
    expect(fixtures.some((f) => f.tags.includes("high-s") && !f.validSignature)).toBe(true);
  });
});

describe("did:key vectors (official interop vectors)", () => {
  type K256 = { privateKeyBytesHex: string; publicDidKey: string };
  type P256 = { privateKeyBytesBase58: string; publicDidKey: string };
  const k256 = readInteropJson<K256[]>("crypto", "w3c_didkey_K256.json");
  const p256 = readInteropJson<P256[]>("crypto", "w3c_didkey_P256.json");

  it.each(k256.map((v) => [v.publicDidKey, v] as const))("secp256k1 %s", async (_d, v) => {
    const keypair = await Secp256k1Keypair.import(v.privateKeyBytesHex);
    expect(keypair.did()).toBe(v.publicDidKey);
    const key = parseDidKey(v.publicDidKey);
    expect(key.curve).toBe("secp256k1");
    expect(formatDidKey(key)).toBe(v.publicDidKey);
  });

  it.each(p256.map((v) => [v.publicDidKey, v] as const))("p256 %s", (_d, v) => {
    const key = parseDidKey(v.publicDidKey);
    expect(key.curve).toBe("p256");
    expect(formatDidKey(key)).toBe(v.publicDidKey);
  });

  it("rejects keys that are not on the curve or of another type", () => {
    expect(() => parseDidKey("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")).toThrow(
      /unsupported/,
    );
    expect(() => parseMultikey("zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBmX")).toThrow();
    expect(() => parseDidKey("did:web:example.com")).toThrow(/did:key/);
  });
});

describe("signed commits made by the reference implementation", () => {
  const keypairs = [
    ["secp256k1", () => Secp256k1Keypair.create({ exportable: true })],
    ["p256", () => P256Keypair.create({ exportable: true })],
  ] as const;

  it.each(keypairs)("%s commit verifies; tampering fails", async (_curve, create) => {
    const keypair = await create();
    const data = cidForDagCbor(encodeDagCbor({ e: [] }));
    const unsigned = {
      did: "did:plc:abcdefghijklmnopqrstuvwx",
      version: 3,
      data,
      rev: "3l6jd7dvzeg2c",
      prev: null,
    };
    const sig = await keypair.sign(encodeDagCbor(unsigned));
    const block = encodeDagCbor({ ...unsigned, sig });
    const commit = decodeCommit(block);
    const key = parseDidKey(keypair.did());
    expect(verifyCommitSignature(commit, key)).toBe(true);

    const flipped = new Uint8Array(commit.sig);
    flipped[10] = (flipped[10] as number) ^ 1;
    expect(verifyCommitSignature({ ...commit, sig: flipped }, key)).toBe(false);
    expect(verifyCommitSignature({ ...commit, rev: "3l6jd7dvzeg2d" }, key)).toBe(false);

    const other = await create();
    expect(verifyCommitSignature(commit, parseDidKey(other.did()))).toBe(false);
  });

  it("rejects a high-S twin of a valid signature", async () => {
    const keypair = await Secp256k1Keypair.create();
    const message = encodeDagCbor({ hello: "world" });
    const sig = await keypair.sign(message);
    const key = parseDidKey(keypair.did());
    expect(verifySignature(key, message, sig)).toBe(true);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString("hex")}`);
    const highS = Buffer.from((n - s).toString(16).padStart(64, "0"), "hex");
    const twin = new Uint8Array([...sig.subarray(0, 32), ...highS]);
    expect(verifySignature(key, message, twin)).toBe(false);
  });

  it("rejects malformed commits with InvalidCommit", () => {
    const data = cidForDagCbor(encodeDagCbor({ e: [] }));
    const base = {
      did: "did:plc:abcdefghijklmnopqrstuvwx",
      version: 3,
      data,
      rev: "3l6jd7dvzeg2c",
      prev: null,
      sig: new Uint8Array(64),
    };
    expect(() => decodeCommit(encodeDagCbor({ ...base, version: 2 }))).toThrow(/version/);
    expect(() => decodeCommit(encodeDagCbor({ ...base, rev: "nope" }))).toThrow(/rev/);
    const { sig: _sig, ...noSig } = base;
    expect(() => decodeCommit(encodeDagCbor(noSig))).toThrow(/sig/);
  });
});

describe("verification of frequently used keys", () => {
  it.each([
    ["secp256k1", () => Secp256k1Keypair.create()],
    ["p256", () => P256Keypair.create()],
  ] as const)("%s: stays correct once the key's table is precomputed", async (_c, create) => {
    const keypair = await create();
    const key = parseDidKey(keypair.did());
    const other = parseDidKey((await create()).did());
    for (let i = 0; i < 20; i++) {
      const message = encodeDagCbor({ i });
      const sig = await keypair.sign(message);
      expect(verifySignature(key, message, sig)).toBe(true);
      expect(verifySignature(key, encodeDagCbor({ i: i + 1 }), sig)).toBe(false);
      expect(verifySignature(other, message, sig)).toBe(false);
      const flipped = new Uint8Array(sig);
      flipped[40] = (flipped[40] as number) ^ 1;
      expect(verifySignature(key, message, flipped)).toBe(false);
    }
  });
});
