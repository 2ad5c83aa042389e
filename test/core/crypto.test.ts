import { P256Keypair, Secp256k1Keypair } from "@atproto/crypto";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { base58btc } from "multiformats/bases/base58";
import { describe, expect, it } from "vitest";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { cidForDagCbor } from "../../src/protocol/cid";
import {
  decodeCommit,
  verifyCommitSignature,
  verifyCommitSignatureAsync,
} from "../../src/protocol/commit";
import {
  formatDidKey,
  type PublicKey,
  parseDidKey,
  parseLegacyMultibaseKey,
  parseMultikey,
} from "../../src/protocol/did-key";
import { keptPoint } from "../../src/protocol/secp256k1-points";
import { verifySignature, verifySignatureAsync } from "../../src/protocol/signature";
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

// the generator points, in both encodings (keys known to be on their curves)
const k256Base = () => secp256k1.Point.BASE.toBytes(true);
const k256BaseUncompressed = () => secp256k1.Point.BASE.toBytes(false);
const p256Base = () => p256.Point.BASE.toBytes(true);
const p256BaseUncompressed = () => p256.Point.BASE.toBytes(false);

// Both entry points: the synchronous one (libsecp256k1 WASM, noble P-256) and the one the
// ingester awaits (libsecp256k1 WASM, WebCrypto P-256).
const verifiers = [
  [
    "verifySignature",
    async (k: PublicKey, m: Uint8Array, s: Uint8Array) => verifySignature(k, m, s),
  ],
  ["verifySignatureAsync", verifySignatureAsync],
] as const;

const highSTwin = (sig: Uint8Array, order: bigint): Uint8Array => {
  const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString("hex")}`);
  const highS = Buffer.from((order - s).toString(16).padStart(64, "0"), "hex");
  return new Uint8Array([...sig.subarray(0, 32), ...highS]);
};
const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

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
  it("covers high-S cases on both curves", () => {
    const highS = fixtures.filter((f) => f.tags.includes("high-s") && !f.validSignature);
    expect(new Set(highS.map((f) => f.algorithm))).toEqual(new Set(["ES256", "ES256K"]));
  });
  describe.each(verifiers)("%s", (_name, verify) => {
    it.each(fixtures.map((f) => [f.comment, f] as const))("%s", async (_c, f) => {
      const message = b64(f.messageBase64);
      const signature = b64(f.signatureBase64);
      // a key seen for the first time, then the same key object again (its cached form)
      const key = parseDidKey(f.publicKeyDid);
      expect(await verify(key, message, signature)).toBe(f.validSignature);
      expect(await verify(key, message, signature)).toBe(f.validSignature);
      const legacy = parseLegacyMultibaseKey(key.curve, f.publicKeyMultibase);
      expect(await verify(legacy, message, signature)).toBe(f.validSignature);
    });
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
    // x = 7 is the x of no point on either curve; 0x04 with a wrong y is off the curve too
    for (const [curve, prefix] of [
      ["secp256k1", [0xe7, 0x01]],
      ["p256", [0x80, 0x24]],
    ] as const) {
      const compressed = new Uint8Array(33);
      compressed[0] = 2;
      compressed[32] = 7;
      const multikey = `z${base58btc.encode(new Uint8Array([...prefix, ...compressed])).slice(1)}`;
      expect(() => parseMultikey(multikey)).toThrow(/not a valid/);
      const valid = parseDidKey(
        formatDidKey({ curve, compressed: curve === "p256" ? p256Base() : k256Base() }),
      );
      expect(valid.curve).toBe(curve);
    }
  });

  it("reads the uncompressed form of the legacy DID-document keys", () => {
    for (const [curve, base] of [
      ["secp256k1", k256BaseUncompressed()],
      ["p256", p256BaseUncompressed()],
    ] as const) {
      const key = parseLegacyMultibaseKey(curve, base58btc.encode(base));
      expect(key.compressed).toEqual(curve === "secp256k1" ? k256Base() : p256Base());
      const offCurve = base.slice();
      offCurve[64] = (offCurve[64] as number) ^ 1;
      expect(() => parseLegacyMultibaseKey(curve, base58btc.encode(offCurve))).toThrow(
        /not a valid/,
      );
    }
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
    const other = parseDidKey((await create()).did());
    const flipped = new Uint8Array(commit.sig);
    flipped[10] = (flipped[10] as number) ^ 1;
    for (const verify of [verifyCommitSignature, verifyCommitSignatureAsync]) {
      expect(await verify(commit, key)).toBe(true);
      expect(await verify({ ...commit, sig: flipped }, key)).toBe(false);
      expect(await verify({ ...commit, rev: "3l6jd7dvzeg2d" }, key)).toBe(false);
      expect(await verify(commit, other)).toBe(false);
    }
  });

  it.each([
    ["secp256k1", () => Secp256k1Keypair.create(), SECP256K1_ORDER],
    ["p256", () => P256Keypair.create(), P256_ORDER],
  ] as const)("%s: rejects the high-S twin of a valid signature", async (_c, create, order) => {
    const keypair = await create();
    const message = encodeDagCbor({ hello: "world" });
    const sig = await keypair.sign(message);
    const key = parseDidKey(keypair.did());
    const twin = highSTwin(sig, order);
    for (const [, verify] of verifiers) {
      expect(await verify(key, message, sig)).toBe(true);
      expect(await verify(key, message, twin)).toBe(false);
    }
  });

  it.each([
    ["secp256k1", () => Secp256k1Keypair.create(), SECP256K1_ORDER],
    ["p256", () => P256Keypair.create(), P256_ORDER],
  ] as const)(
    "%s: rejects r or s out of range and keys off the curve",
    async (_c, create, order) => {
      const keypair = await create();
      const message = encodeDagCbor({ hello: "range" });
      const sig = await keypair.sign(message);
      const key = parseDidKey(keypair.did());
      const n = Buffer.from(order.toString(16).padStart(64, "0"), "hex");
      const rIsOrder = new Uint8Array([...n, ...sig.subarray(32)]);
      const zeroS = new Uint8Array([...sig.subarray(0, 32), ...new Uint8Array(32)]);
      const zeroR = new Uint8Array([...new Uint8Array(32), ...sig.subarray(32)]);
      // x = 7 is not the x of any point on either curve
      const offCurve: PublicKey = { curve: key.curve, compressed: new Uint8Array(33) };
      offCurve.compressed[0] = 2;
      offCurve.compressed[32] = 7;
      for (const [, verify] of verifiers) {
        expect(await verify(key, message, rIsOrder)).toBe(false);
        expect(await verify(key, message, zeroS)).toBe(false);
        expect(await verify(key, message, zeroR)).toBe(false);
        expect(await verify(key, message, sig.subarray(0, 63))).toBe(false);
        expect(await verify(offCurve, message, sig)).toBe(false);
      }
    },
  );

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
  it("keeps a parsed secp256k1 key's uncompressed point, so no signature parses it again", () => {
    const key = parseDidKey(formatDidKey({ curve: "secp256k1", compressed: k256Base() }));
    expect(keptPoint(key)).toEqual(k256BaseUncompressed());
    const legacy = parseLegacyMultibaseKey("secp256k1", base58btc.encode(k256BaseUncompressed()));
    expect(keptPoint(legacy)).toEqual(k256BaseUncompressed());
    expect(legacy.compressed).toEqual(k256Base());
  });

  describe.each(verifiers)("%s", (_name, verify) => {
    it("a secp256k1 key made without parsing verifies the same, first use and later", async () => {
      const keypair = await Secp256k1Keypair.create();
      const parsed = parseDidKey(keypair.did());
      // the same point as a bare object: no kept point, so the verifier's own path
      const bare: PublicKey = { curve: "secp256k1", compressed: parsed.compressed.slice() };
      expect(keptPoint(bare)).toBeUndefined();
      for (let i = 0; i < 4; i++) {
        const message = encodeDagCbor({ i });
        const sig = await keypair.sign(message);
        expect(await verify(bare, message, sig)).toBe(true);
        expect(await verify(bare, encodeDagCbor({ i: i + 1 }), sig)).toBe(false);
      }
      // an off-curve point is refused on every use, not only the first
      const offCurve: PublicKey = { curve: "secp256k1", compressed: new Uint8Array(33) };
      offCurve.compressed[0] = 2;
      offCurve.compressed[32] = 7;
      const message = encodeDagCbor({ i: 0 });
      const sig = await keypair.sign(message);
      for (let i = 0; i < 3; i++) expect(await verify(offCurve, message, sig)).toBe(false);
    });

    it.each([
      ["secp256k1", () => Secp256k1Keypair.create()],
      ["p256", () => P256Keypair.create()],
    ] as const)("%s: stays correct once the key is cached", async (_c, create) => {
      const keypair = await create();
      const key = parseDidKey(keypair.did());
      const other = parseDidKey((await create()).did());
      for (let i = 0; i < 20; i++) {
        const message = encodeDagCbor({ i });
        const sig = await keypair.sign(message);
        expect(await verify(key, message, sig)).toBe(true);
        expect(await verify(key, encodeDagCbor({ i: i + 1 }), sig)).toBe(false);
        expect(await verify(other, message, sig)).toBe(false);
        const flipped = new Uint8Array(sig);
        flipped[40] = (flipped[40] as number) ^ 1;
        expect(await verify(key, message, flipped)).toBe(false);
      }
    });
  });
});
