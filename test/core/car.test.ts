import { sha256 } from "@noble/hashes/sha2.js";
import * as Digest from "multiformats/hashes/digest";
import { describe, expect, it } from "vitest";
import { readCar, writeCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { CID, cidForDagCbor, cidForRaw } from "../../src/protocol/cid";
import { errorName } from "../support/protocol-errors";

const a = encodeDagCbor({ text: "a" });
const b = new TextEncoder().encode("raw bytes");
const aCid = cidForDagCbor(a);
const bCid = cidForRaw(b);

describe("CAR reader", () => {
  it("round-trips roots and blocks", () => {
    const car = readCar(
      writeCar(
        [aCid],
        [
          [aCid, a],
          [bCid, b],
        ],
      ),
    );
    expect(car.roots.map(String)).toEqual([aCid.toString()]);
    expect([...car.blocks.keys()]).toEqual([aCid.toString(), bCid.toString()]);
    expect(Buffer.from(car.blocks.get(bCid.toString())!).toString()).toBe("raw bytes");
  });

  it("reads headers off the one-root layout (two roots, extra fields) through the general decoder", () => {
    const two = readCar(writeCar([aCid, bCid], [[aCid, a]]));
    expect(two.roots.map(String)).toEqual([aCid.toString(), bCid.toString()]);
    const header = encodeDagCbor({ version: 1, roots: [aCid], note: "x" });
    const section = new Uint8Array([...aCid.bytes, ...a]);
    const car = readCar(new Uint8Array([header.length, ...header, section.length, ...section]));
    expect(car.roots.map(String)).toEqual([aCid.toString()]);
    expect([...car.blocks.keys()]).toEqual([aCid.toString()]);
  });

  it("rejects a block whose bytes do not hash to its CID (CidMismatch)", () => {
    const bytes = writeCar([aCid], [[aCid, a]]);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    expect(errorName(() => readCar(bytes))).toBe("CidMismatch");
  });

  it("rejects lengths beyond the input, bad headers and non-minimal varints (InvalidCar)", () => {
    const bytes = writeCar([aCid], [[aCid, a]]);
    expect(errorName(() => readCar(bytes.subarray(0, bytes.length - 3)))).toBe("InvalidCar");
    const v2 = encodeDagCbor({ version: 2, roots: [aCid] });
    expect(errorName(() => readCar(new Uint8Array([v2.length, ...v2])))).toBe("InvalidCar");
    expect(errorName(() => readCar(new Uint8Array([0x80, 0x00])))).toBe("InvalidCar");
    expect(errorName(() => readCar(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])))).toBe(
      "InvalidCar",
    );
  });

  it("caps the number of blocks and the total size (CarTooLarge)", () => {
    const blocks: [CID, Uint8Array][] = [];
    for (let i = 0; i < 20; i++) {
      const block = encodeDagCbor({ i });
      blocks.push([cidForDagCbor(block), block]);
    }
    const bytes = writeCar([aCid], blocks);
    expect(errorName(() => readCar(bytes, { maxBlocks: 10 }))).toBe("CarTooLarge");
    expect(errorName(() => readCar(bytes, { maxBytes: 100 }))).toBe("CarTooLarge");
  });

  it("refuses CIDs atproto does not allow (InvalidCid)", () => {
    const sha1ish = CID.createV1(0x71, Digest.create(0x11, sha256(a).subarray(0, 20)));
    expect(errorName(() => readCar(writeCar([aCid], [[sha1ish, a]])))).toBe("InvalidCid");
    const v0 = CID.createV0(Digest.create(0x12, sha256(a)));
    expect(errorName(() => readCar(writeCar([aCid], [[v0 as unknown as CID, a]])))).toBe(
      "InvalidCid",
    );
  });
});
